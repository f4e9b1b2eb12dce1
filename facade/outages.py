"""A dependency the facade can't reach is a 503 with a reason, never a 500.

PostgreSQL (the index), Redis (rate limits, the deny-list), S3 or a local element (downloads)
and the key service can each be away for a while. A request that meets one of them answers
503 problem+json naming what is away, with ``Retry-After``; the client tries again later and
nothing is lost (the facade keeps no state of its own on that path).
"""

from __future__ import annotations

import asyncpg
import httpx
import redis.exceptions
import urllib3.exceptions

from storage_workers.backends import BackendError

RETRY_AFTER_S = 5
GENERIC = "a service the facade depends on"

#: Exceptions that mean "a dependency did not answer", by the name a client reads.
OUTAGES: tuple[tuple[type[Exception], str], ...] = (
    (asyncpg.PostgresConnectionError, "the index database (PostgreSQL)"),
    (asyncpg.InterfaceError, "the index database (PostgreSQL)"),
    (asyncpg.exceptions.OperatorInterventionError, "the index database (PostgreSQL)"),
    # A connection the server dropped mid-statement leaves the client in a state it reports so.
    (asyncpg.exceptions.InternalClientError, "the index database (PostgreSQL)"),
    (redis.exceptions.ConnectionError, "Redis"),
    (redis.exceptions.TimeoutError, "Redis"),
    (BackendError, "the element's storage"),
    (urllib3.exceptions.HTTPError, "S3"),
    (httpx.TransportError, "the key service"),
    (ConnectionError, GENERIC),
    (TimeoutError, GENERIC),
)

OUTAGE_TYPES = tuple(kind for kind, _ in OUTAGES)


#: A bare ``ConnectionError`` or ``TimeoutError`` names no one: the client library whose code
#: raised it does.
CLIENT_MODULES: tuple[tuple[str, str], ...] = (
    ("asyncpg", "the index database (PostgreSQL)"),
    ("redis", "Redis"),
    ("minio", "S3"),
    ("urllib3", "S3"),
    ("httpx", "the key service"),
)


def _raised_in(exc: BaseException) -> str | None:
    frame = exc.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        for prefix, name in CLIENT_MODULES:
            if module == prefix or module.startswith(prefix + "."):
                return name
        frame = frame.tb_next
    return None


def outage_of(exc: BaseException) -> str | None:
    """What is away, when ``exc`` (or what caused it) says a dependency did not answer."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for kind, name in OUTAGES:
            if isinstance(current, kind):
                return (_raised_in(current) or name) if name == GENERIC else name
        current = current.__cause__ or current.__context__
    return None


def outage_body(what: str) -> dict[str, object]:
    """The problem+json document of a request that met an outage."""
    return {
        "title": "Service unavailable",
        "status": 503,
        "detail": f"{what} is not answering; retry later",
    }
