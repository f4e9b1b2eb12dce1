"""Async helpers for tests against the real stack: poll for a condition, never sleep blindly."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from minio import Minio

from artstore.stack import StackEnv, maintenance_dsn, with_database

Predicate = Callable[[], bool | Awaitable[bool]]


async def wait_until(
    predicate: Predicate,
    timeout: float = 10.0,  # noqa: ASYNC109 - a deadline for polling, not for one await
    interval: float = 0.05,
    *,
    message: str | None = None,
) -> None:
    """Poll ``predicate`` (sync or async) until it is true; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise TimeoutError(f"{what} did not hold within {timeout}s")
        await asyncio.sleep(interval)


def _underlying_consumer(consumer_or_subscriber: Any) -> Any | None:
    """An aiokafka consumer as is, or a FastStream subscriber's (None until it has started)."""
    if callable(getattr(consumer_or_subscriber, "assignment", None)):
        return consumer_or_subscriber
    return getattr(consumer_or_subscriber, "consumer", None)


async def wait_for_assignment(consumer_or_subscriber: Any, timeout: float = 30.0) -> set[Any]:  # noqa: ASYNC109
    """Wait until the group has assigned partitions to this consumer; return them.

    The broker delays a group's first rebalance by a few seconds, so a test that produces
    before its consumer owns partitions would race; this waits for the assignment instead.
    """

    def assigned() -> set[Any]:
        consumer = _underlying_consumer(consumer_or_subscriber)
        return set(consumer.assignment()) if consumer is not None else set()

    await wait_until(
        lambda: bool(assigned()), timeout, message=f"assignment of {consumer_or_subscriber!r}"
    )
    return assigned()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database ``artstore_t_<hex>`` on ``server_url``'s server, dropped after."""
    name = f"artstore_t_{secrets.token_hex(6)}"
    admin_dsn = maintenance_dsn(server_url)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield with_database(server_url, name)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def s3_client(stack: StackEnv) -> Minio:
    """A MinIO client for the stack's S3."""
    return Minio(
        stack.s3_endpoint,
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=stack.s3_secure,
        region=stack.s3_region,
    )
