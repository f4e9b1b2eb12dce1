"""Errors the facade answers with, as RFC 9457 problem details."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from events import in_utc


class Problem(Exception):
    """An HTTP error with a message a client developer can act on."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The ``application/problem+json`` document."""
        return {"title": self.title, "status": self.status, "detail": self.detail, **self.extra}


class BadRequest(Problem):
    """A parameter is missing, malformed or out of range."""

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}", parameter=parameter)


class NotFound(Problem):
    status = 404
    title = "Not found"


class Gone(Problem):
    status = 410
    title = "Gone"


class Conflict(Problem):
    status = 409
    title = "Conflict"


class RangeNotSatisfiable(Problem):
    status = 416
    title = "Range not satisfiable"


class Unavailable(Problem):
    status = 503
    title = "Service unavailable"


class PayloadTooLarge(Problem):
    status = 413
    title = "Payload too large"


def utc_parameter(name: str, value: datetime) -> datetime:
    """A client's time (read as UTC when it has no zone) in UTC; :class:`BadRequest` naming
    ``name`` when it is outside the years 1-9999 there, which no database can hold."""
    try:
        return in_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    except ValueError as exc:
        raise BadRequest(name, str(exc)) from None
