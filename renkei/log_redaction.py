"""Secrets never reach a log line: query values such as ``code=`` and ``state=`` are masked.

The OAuth callback carries a one-time code and the state in its query string; access
logs and HTTP client logs would otherwise write them out.
"""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(
    r"(?i)\b(code|state|token|access_token|refresh_token|password|code_verifier|session)"
    r"=([^&\s\"']+)"
)
REDACTED = "***"


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Masks secret query values in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


_LOGGERS = ("uvicorn.access", "uvicorn.error", "httpx", "renkei", "backend", "connectors")


def install() -> None:
    """Attach the filter to the loggers that may see request URLs (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
