"""Log lines as JSON by a setting, secrets masked, client chatter quiet."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from renkei.logs import configure_logging
from renkei.settings import Settings


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    logger = logging.getLogger()
    saved = (logger.handlers[:], logger.level, logging.getLogger("httpx").level)
    try:
        yield logger
    finally:
        logger.handlers, logger.level = saved[0], saved[1]
        logging.getLogger("httpx").setLevel(saved[2])


def test_json_lines_with_secrets_masked(
    root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENKEI_LOG_FORMAT", "json")
    configure_logging(Settings().log_format)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("renkei.test").warning("callback %s", "/cb?code=abc123&state=xyz")
    logging.getLogger("httpx").info("HTTP Request: GET https://issuer/ 200")  # quiet
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "renkei.test"
    assert record["message"] == "callback /cb?code=***&state=***"


def test_text_by_default(root: logging.Logger) -> None:
    assert Settings().log_format == "text"
    configure_logging("text")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("renkei.test").info("started")
    assert stream.getvalue() == "INFO renkei.test: started\n"
