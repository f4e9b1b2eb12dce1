"""Transactional outbox: events are stored with the change they describe, and a relay publishes.

Writers call :func:`enqueue` on the connection of their own transaction, so the audit event
exists if and only if the change committed. The relay takes pending rows in id order with
``FOR UPDATE SKIP LOCKED`` (several replicas can relay without publishing a row twice at
once), publishes the batch, then marks it published in the same transaction. A crash between
publishing and commit publishes the batch again: delivery is at-least-once, and consumers
deduplicate on the event id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth.db import outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One record to publish, exactly as it will go to Kafka."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


class OutboxPublisher(Protocol):
    """Publishes a batch and returns only once every record is acknowledged."""

    async def publish_batch(self, messages: Sequence[OutboxMessage]) -> None: ...


async def enqueue(conn: AsyncConnection, messages: Sequence[OutboxMessage], now: datetime) -> None:
    """Add ``messages`` to the outbox inside the caller's transaction."""
    if not messages:
        return
    await conn.execute(
        insert(outbox),
        [
            {
                "topic": m.topic,
                "key": m.key,
                "value": m.value,
                "headers": [[k, base64.b64encode(v).decode("ascii")] for k, v in m.headers],
                "created_at": now,
            }
            for m in messages
        ],
    )


def next_retry_delay(previous: float, poll_interval: float, maximum: float) -> float:
    """The wait after another failed attempt: the poll interval, then doubling, capped."""
    if previous <= 0:
        return min(poll_interval, maximum)
    return min(previous * 2, maximum)


class OutboxRelay:
    """Moves pending outbox rows to Kafka in batches."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: OutboxPublisher,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention_s: float = 86400.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._engine = engine
        self._publisher = publisher
        self._clock = clock
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention_s = retention_s
        self._max_backoff = max(max_backoff, poll_interval)
        self._wake = asyncio.Event()
        self.published = 0
        self.failures = 0
        self.retry_delay = 0.0
        """Seconds the relay waits before its next attempt; 0 while publishing works."""

    def notify(self) -> None:
        """A writer committed new rows: relay now rather than at the next poll."""
        self._wake.set()

    async def pending(self) -> int:
        """How many rows wait to be published."""
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def publish_once(self) -> int:
        """Publish one batch; return how many rows it held."""
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers
                    )
                    .where(outbox.c.published_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            messages = [
                OutboxMessage(
                    topic=r.topic,
                    key=r.key,
                    value=r.value,
                    headers=tuple((k, base64.b64decode(v)) for k, v in r.headers),
                )
                for r in rows
            ]
            await self._publisher.publish_batch(messages)
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(published_at=self._clock())
            )
        self.published += len(rows)
        return len(rows)

    async def drain(self) -> int:
        """Publish until nothing is pending; return how many rows went out."""
        total = 0
        while batch := await self.publish_once():
            total += batch
        return total

    async def prune(self) -> None:
        """Forget rows published longer ago than the retention."""
        cutoff = self._clock().timestamp() - self._retention_s
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(outbox).where(
                    outbox.c.published_at < func.to_timestamp(cutoff),
                )
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; Kafka being away only delays, never loses, events.

        After a failure the relay waits out its backoff even when writers notify it: otherwise
        every token issued while Kafka is away would trigger another connection attempt.
        """
        delay = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.drain()
                await self.prune()
            except Exception as exc:
                self.failures += 1
                delay = next_retry_delay(delay, self._poll_interval, self._max_backoff)
                self.retry_delay = delay
                log.warning(
                    "outbox relay failed; events stay pending and will be retried",
                    extra={"error": str(exc), "retry_in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            delay = self.retry_delay = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._any(stop), timeout=self._poll_interval)

    async def _any(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
