"""Secrets never reach a log line: query values such as ``code=`` and ``state=`` are masked.

The OAuth callback carries a one-time code and the state in its query string, and an
export link carries its signed token in its path (whoever has the link downloads the
statements); access logs and HTTP client logs would otherwise write them out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

_SECRET_QUERY = re.compile(
    r"(?i)\b(code|state|token|access_token|refresh_token|password|code_verifier|session)"
    r"=([^&\s\"']+)"
)
# /api/v1/exports/<token>: the token is the credential of the download.
_SECRET_PATH = re.compile(r"(/exports/)([^/?#\s\"']+)")
REDACTED = "***"


def redact(text: str) -> str:
    text = _SECRET_PATH.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Masks secret query values in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


_redactor = RedactSecrets()


def _redacting_factory(base: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        _redactor.filter(record)
        return record

    make.redacts = True  # type: ignore[attr-defined]
    return make


def install() -> None:
    """Redact every record of every logger, whichever module logs it (idempotent)."""
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacts", False):
        logging.setLogRecordFactory(_redacting_factory(current))
