"""Async helpers for tests against the real stack: poll for a condition, never sleep blindly."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from minio import Minio

from artstore.stack import StackEnv, maintenance_dsn, with_database
from base.settings import Settings
from events import ReceivedEvent, Topic, decode_record
from events.admin import topic_partitions

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


def poll_until(
    predicate: Callable[[], bool],
    timeout: float,
    message: str,
    interval: float = 0.2,
) -> None:
    """Blocking twin of :func:`wait_until`, for tests that drive processes synchronously."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} did not hold within {timeout}s")
        time.sleep(interval)


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


Received = tuple[ConsumerRecord[bytes, bytes], ReceivedEvent]


async def consumer_from_beginning(
    settings: Settings, topics: Iterable[Topic], **options: Any
) -> AIOKafkaConsumer:
    """A started consumer of every partition of ``topics``, at their beginning, in no group.

    Without a group there is no join delay; the caller stops it. ``options`` go to the consumer.
    """
    names = settings.topic_names()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(
            settings.kafka_bootstrap, [names.name(topic) for topic in topics]
        )
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def read_events(
    settings: Settings,
    topics: Iterable[Topic],
    until: Callable[[list[Received]], bool],
    *,
    deadline_s: float = 30.0,
    settle_ms: int = 0,
) -> list[Received]:
    """Every event on ``topics`` (this module's prefix) from the beginning, strictly decoded.

    Reads without a consumer group (no join delay) until ``until(received)`` holds; then, if
    ``settle_ms`` is set, polls once more so anything published twice right behind shows up.
    """
    names = settings.topic_names()
    consumer = await consumer_from_beginning(settings, topics)
    received: list[Received] = []

    async def poll(timeout_ms: int) -> None:
        for records in (await consumer.getmany(timeout_ms=timeout_ms)).values():
            for record in records:
                topic = names.logical(record.topic)
                event = decode_record(record, max_bytes=settings.max_message_bytes, topic=topic)
                received.append((record, event))

    try:
        async with asyncio.timeout(deadline_s):
            while not until(received):
                await poll(500)
            if settle_ms:
                await poll(settle_ms)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return received


def event_ids(received: list[Received]) -> set[str]:
    """The envelope ids among ``received``."""
    return {event.envelope.id for _, event in received}
