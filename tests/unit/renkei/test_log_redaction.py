"""No OAuth code, state, token or password in a log line."""

from __future__ import annotations

import logging

import pytest

from renkei import log_redaction


def test_access_log_line_of_the_callback_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log_redaction.install()
    logger = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5555",
            "GET",
            "/api/v1/oauth/callback?state=st4te-value&code=c0de-value",
            "1.1",
            200,
        )
    assert "st4te-value" not in caplog.text and "c0de-value" not in caplog.text
    assert "/api/v1/oauth/callback?state=***&code=***" in caplog.text


def test_every_module_logger_is_covered(caplog: pytest.LogCaptureFixture) -> None:
    log_redaction.install()
    log_redaction.install()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("backend.jobs.runner").info("retrying %s", "/cb?code=abc123&x=1")
        logging.getLogger("some.library").warning("GET /cb?state=zzz999")
    assert "abc123" not in caplog.text and "zzz999" not in caplog.text
    assert "code=***" in caplog.text


def test_redact_leaves_other_values() -> None:
    assert log_redaction.redact("a=1&password=hunter2&b=2") == "a=1&password=***&b=2"
    assert log_redaction.redact("/offices?limit=10") == "/offices?limit=10"


def test_an_export_link_is_not_written_to_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_redaction.install()
    logger = logging.getLogger("uvicorn.access")
    token = "eyJhIjoiYWNjIn0.c2lnbmF0dXJl"
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        logger.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5555",
            "GET",
            f"/api/v1/exports/{token}",
            "1.1",
            200,
        )
    assert token not in caplog.text
    assert '"GET /api/v1/exports/*** HTTP/1.1" 200' in caplog.text
