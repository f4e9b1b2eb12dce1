"""Which dependency did not answer, read from an exception: for a 503 that names it.

A service that meets an unreachable PostgreSQL, Redis, S3 or key service answers 503 with
``Retry-After`` and the name of what is away, never 500. :func:`outage_of` walks an exception
and what caused it; a bare ``ConnectionError`` or ``OSError`` names no one, so the client
library whose code raised it does.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import httpx
import redis.exceptions
import sqlalchemy.exc
import urllib3.exceptions

RETRY_AFTER_S = 5
GENERIC = "a service this one depends on"
POSTGRES = "PostgreSQL"

Outages = Sequence[tuple[type[Exception], str]]

#: Exceptions that mean "a dependency did not answer", by the name a client reads.
OUTAGES: Outages = (
    (asyncpg.PostgresConnectionError, POSTGRES),
    (asyncpg.InterfaceError, POSTGRES),
    (asyncpg.exceptions.OperatorInterventionError, POSTGRES),
    # A connection the server dropped mid-statement leaves the client in a state it reports so.
    (asyncpg.exceptions.InternalClientError, POSTGRES),
    (sqlalchemy.exc.OperationalError, POSTGRES),
    (sqlalchemy.exc.InterfaceError, POSTGRES),
    (redis.exceptions.ConnectionError, "Redis"),
    (redis.exceptions.TimeoutError, "Redis"),
    (urllib3.exceptions.HTTPError, "S3"),
    (httpx.TransportError, "the key service"),
    (ConnectionError, GENERIC),
    (TimeoutError, GENERIC),
    # Any other OS error on the way to a dependency (a host name that no longer resolves, no
    # route to it): named by the client library it was raised in.
    (OSError, GENERIC),
)

CLIENT_MODULES: tuple[tuple[str, str], ...] = (
    ("asyncpg", POSTGRES),
    ("sqlalchemy", POSTGRES),
    ("redis", "Redis"),
    ("minio", "S3"),
    ("urllib3", "S3"),
    ("httpx", "the key service"),
)


def outage_types(outages: Outages = OUTAGES) -> tuple[type[Exception], ...]:
    """The exception classes to install a 503 handler for."""
    return tuple(kind for kind, _ in outages)


def _raised_in(exc: BaseException) -> str | None:
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        for prefix, name in CLIENT_MODULES:
            if module == prefix or module.startswith(prefix + "."):
                return name
        frame = frame.tb_next
    return None


def outage_of(exc: BaseException, outages: Outages = OUTAGES) -> str | None:
    """What is away, when ``exc`` (or what caused it) says a dependency did not answer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for kind, name in outages:
            if isinstance(current, kind):
                return (_raised_in(current) or name) if name == GENERIC else name
        current = current.__cause__ or current.__context__
    return None


def outage_body(what: str) -> dict[str, object]:
    """The problem document of a request that met an outage."""
    return {
        "title": "Service unavailable",
        "status": 503,
        "detail": f"{what} is not answering; retry later",
    }
