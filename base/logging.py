"""One log format for every ArtStore service and command: JSON lines (or text for a terminal).

Each JSON line carries ``service``, ``correlation_id`` and, when one exists, ``trace_id`` and
``span_id``; fields passed with ``extra=`` (``file_id``, ``upload_id``, ``element_id``, …)
become keys of their own. A line written while a message or request is handled carries that
message's correlation id (set with :func:`correlated`); any other line carries the process's
own run id, so that every line can be followed and grouped. The trace is the current
OpenTelemetry span's (see :mod:`base.telemetry`), or one named with :func:`correlated`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace as otel_trace

LogFormat = Literal["json", "text"]

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


@contextlib.contextmanager
def correlated(correlation: str | None, *, trace: str | None = None) -> Iterator[None]:
    """Log lines written inside carry ``correlation`` (and ``trace``) instead of the run id."""
    tokens = (correlation_id.set(correlation or correlation_id.get()), trace_id.set(trace))
    try:
        yield
    finally:
        trace_id.reset(tokens[1])
        correlation_id.reset(tokens[0])


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields become keys."""

    def __init__(self, service: str, run_id: str) -> None:
        super().__init__()
        self.service = service
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": correlation_id.get() or self.run_id,
        }
        span = otel_trace.get_current_span().get_span_context()
        if span.is_valid:
            payload["trace_id"] = format(span.trace_id, "032x")
            payload["span_id"] = format(span.span_id, "016x")
        elif trace := trace_id.get():
            payload["trace_id"] = trace
        payload.update(extras(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a log call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}


class ExtrasFormatter(logging.Formatter):
    """A text line followed by the ``extra=`` fields as ``key=value`` pairs: the reason a
    warning names is part of what a person reads."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(f"{k}={v!r}" for k, v in extras(record).items())
        return f"{line} {fields}" if fields else line


class TextFormatter(ExtrasFormatter):
    """A line a person reads: time, level, service, correlation id, logger, message, fields."""

    def __init__(self, service: str, run_id: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.service = service
        self.run_id = run_id

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return f"{self.service} [{correlation_id.get() or self.run_id}] {line}"


def configure_logging(
    level: str = "INFO",
    *,
    json_lines: bool = True,
    service: str = "artstore",
    log_format: LogFormat | None = None,
) -> None:
    """Route the root logger to stderr as JSON lines (or text), naming ``service``.

    ``log_format`` (the ``--log-format`` option) wins over ``json_lines`` (``ARTSTORE_LOG_JSON``).
    """
    as_json = json_lines if log_format is None else log_format == "json"
    run_id = f"{service}-{uuid.uuid4().hex[:12]}"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(service, run_id) if as_json else TextFormatter(service, run_id)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
