"""The structured access log: one JSON line per request on the ``api.access`` logger.

A line carries the request id, method, path (never the query string: ``/search?q=`` holds user
text), status, latency in ms, the client id, and whatever the route added with ``log_fields``
(e.g. a question's length and a short hash, never its text).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from typing import Any

from starlette.requests import Request

ACCESS_LOGGER = "api.access"


class JsonLineFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, logger, message and its ``access`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging() -> None:
    """Send ``api.*`` records as JSON lines to stderr, once, unless the host already configured them.

    ``rag serve`` sets the root logger to WARNING; the service's own info lines (access log,
    start-up) should still show, so the ``api`` logger gets its own handler and level.
    """
    logger = logging.getLogger("api")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def fingerprint(text: str) -> str:
    """A short, stable hash to correlate log lines about the same question without storing it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def log_fields(request: Request, **fields: Any) -> None:
    """Add fields to this request's access-log line."""
    request.state.log_fields = {**getattr(request.state, "log_fields", {}), **fields}


def log_access(fields: dict[str, Any]) -> None:
    logging.getLogger(ACCESS_LOGGER).info(
        "%s %s %s", fields.get("method"), fields.get("path"), fields.get("status"), extra={"access": fields}
    )
