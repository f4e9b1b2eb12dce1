"""What the facade names as away when a dependency does not answer (503, never 500)."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import redis.exceptions

from facade.outages import outage_of
from storage_workers.backends import BackendError


def test_client_errors_name_their_dependency() -> None:
    assert outage_of(asyncpg.exceptions.CannotConnectNowError("starting up")) == ("PostgreSQL")
    assert outage_of(asyncpg.exceptions.InternalClientError("cannot switch to state 12")) == (
        "PostgreSQL"
    )
    assert outage_of(redis.exceptions.ConnectionError("refused")) == "Redis"
    assert outage_of(BackendError("S3 request failed")) == "the element's storage"


def refusal(dsn: str) -> OSError:
    """What asyncpg raises connecting to ``dsn``, where nothing answers."""

    async def connect() -> OSError:
        try:
            await asyncpg.connect(dsn, timeout=5)
        except OSError as exc:
            return exc
        raise AssertionError(f"{dsn} answered")

    return asyncio.run(connect())


def test_a_refused_connection_is_named_by_the_client_that_met_it() -> None:
    assert outage_of(refusal("postgresql://nobody@127.0.0.1:1/none")) == "PostgreSQL"


def test_a_cause_further_down_the_chain_counts() -> None:
    wrapped = RuntimeError("query failed")
    wrapped.__cause__ = ConnectionResetError(104, "reset by peer")
    assert outage_of(wrapped) == "a service this one depends on"


def test_errors_of_our_own_are_not_outages() -> None:
    assert outage_of(ValueError("bad input")) is None
    assert outage_of(KeyError("missing")) is None
    assert outage_of(asyncpg.exceptions.UndefinedTableError("no such table")) is None


def test_a_host_name_that_no_longer_resolves_is_an_outage() -> None:
    failure = refusal("postgresql://nobody@postgres.invalid:5432/none")
    assert isinstance(failure, socket.gaierror)
    assert outage_of(failure) == "PostgreSQL"
