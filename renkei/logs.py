"""Log lines of renkei's processes: plain text, or one JSON object a line for a collector.

Secrets are masked before any formatter sees a record (``renkei.log_redaction``). The
HTTP clients' line per request and Procrastinate's line per job are quiet unless they
warn: at INFO they would drown what an operator needs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Literal

LogFormat = Literal["text", "json"]
QUIET = ("httpx", "httpcore", "procrastinate")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure_logging(log_format: LogFormat) -> None:
    """The root logger of a ``renkei`` command (serve, worker) at INFO, in ``log_format``."""
    from renkei import log_redaction

    log_redaction.install()
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
