"""The dispatcher's consumer: fact batches in, deliveries queued with the positions.

A batch is read, the facts that notify someone are decoded (the ``ce_type`` header says which
are worth decoding), their owners' webhooks are looked up in one query, and every delivery is
written with the partitions' new positions in one transaction (:meth:`DeliveryQueue.enqueue`).
Then the sender is woken. Records that cannot be decoded are skipped here: the projector reads
the same topic and dead-letters them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from events import EventDecodeError, Topic, TopicNames, decode_record
from notifications import metrics
from notifications.accounts import MARK as ACCOUNT_MARK
from notifications.accounts import AccountChange, account_change, apply_account_changes
from notifications.matching import Notable, deliveries_for, notable, route_of_type
from notifications.queue import DeliveryQueue, PositionMismatch

log = logging.getLogger("notifications.dispatcher")

NOTIFYING_TOPICS = (Topic.FILES, Topic.AUDIT)
"""Where the facts that notify are announced (uploads and restores are facts about files), and
where the auth service records the account changes that webhooks follow."""
TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError)


class SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue each partition from the dispatcher's stored position."""

    def __init__(self, consumer: AIOKafkaConsumer, queue: DeliveryQueue) -> None:
        self.consumer = consumer
        self.queue = queue

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        stored = await self.queue.stored_positions([(tp.topic, tp.partition) for tp in assigned])
        fresh = []
        for tp in assigned:
            position = stored.get((tp.topic, tp.partition))
            if position is None:
                fresh.append(tp)
            else:
                self.consumer.seek(tp, position)
        if fresh:
            await self.consumer.seek_to_beginning(*fresh)


class Dispatcher:
    """Turns fact batches into queued deliveries (see the module's docstring)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        queue: DeliveryQueue,
        topics: TopicNames,
        wake: asyncio.Event,
        *,
        max_message_bytes: int,
        batch_size: int,
        poll_timeout_ms: int,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.consumer = consumer
        self.queue = queue
        self.topics = topics
        self.wake = wake
        self.max_message_bytes = max_message_bytes
        self.batch_size = batch_size
        self.poll_timeout_ms = poll_timeout_ms
        self.max_backoff_s = max_backoff_s
        self._refused: dict[tuple[str, int], int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Read, queue and commit batches until ``stop`` is set."""
        while not stop.is_set():
            fetched = await self.consumer.getmany(
                timeout_ms=self.poll_timeout_ms, max_records=self.batch_size
            )
            if fetched:
                await self._with_retries(fetched, stop)

    async def _with_retries(
        self, fetched: Mapping[TopicPartition, Sequence[Any]], stop: asyncio.Event
    ) -> None:
        delay = 0.5
        while True:
            try:
                await self.handle(fetched)
                return
            except TRANSIENT as exc:
                metrics.DB_RETRIES.inc()
                log.warning("the database failed; batch retried", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    # Not queued: the next start reads the batch again from the stored positions.
                    return
                delay = min(delay * 2, self.max_backoff_s)

    async def handle(self, fetched: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Queue one batch's deliveries with its positions."""
        first: dict[tuple[str, int], int] = {}
        after: dict[tuple[str, int], int] = {}
        found: list[Notable] = []
        changes: list[AccountChange] = []
        for tp, records in fetched.items():
            if not records:
                continue
            key = (tp.topic, tp.partition)
            first[key] = records[0].offset
            after[key] = records[-1].offset + 1
            topic = self.topics.logical(tp.topic)
            for record in records:
                if topic is Topic.AUDIT:
                    if (change := self._account_change(record)) is not None:
                        changes.append(change)
                    continue
                hit = self._notable(record, topic)
                if hit is not None:
                    found.append(hit)
        if not after:
            return
        subscribers = await self.queue.subscribers(sorted({n.owner for n in found}))
        deliveries = deliveries_for(found, subscribers)
        tolerate = frozenset(tp for tp, at in self._refused.items() if at == first.get(tp))

        async def apply_changes(conn: asyncpg.Connection) -> None:
            await apply_account_changes(conn, changes, self.topics, self.max_message_bytes)

        try:
            inserted = await self.queue.enqueue(
                first, after, deliveries, tolerate=tolerate, before=apply_changes
            )
        except PositionMismatch as exc:
            # Records between the stored position and this batch were never queued: read them,
            # and the rest of the batch again (none of it was queued).
            for key, offset in first.items():
                back = exc.seek_to.get(key, offset)
                self.consumer.seek(TopicPartition(*key), back)
                if key in exc.seek_to:
                    self._refused[key] = offset
            log.warning("batch past the stored positions; sought back", extra={"to": str(exc)})
            return
        for tp in after:
            self._refused.pop(tp, None)
        owners = {s.client_id for s in subscribers}
        metrics.FACTS.labels("notified").inc(sum(1 for n in found if n.owner in owners))
        metrics.FACTS.labels("unmatched").inc(sum(1 for n in found if n.owner not in owners))
        for delivery in deliveries:
            if delivery.delivery_id in inserted:
                metrics.QUEUED.labels(delivery.kind).inc()
        if inserted:
            self.wake.set()
        await self._commit_quietly(after)

    def _account_change(self, record: Any) -> AccountChange | None:
        if ACCOUNT_MARK not in (record.value or b""):
            return None
        try:
            event = decode_record(record, max_bytes=self.max_message_bytes, topic=Topic.AUDIT)
        except EventDecodeError:
            return None  # the audit projection dead-letters it
        return account_change(event.envelope)

    def _notable(self, record: Any, topic: Topic | None) -> Notable | None:
        hint = next(
            (v.decode("utf-8", "replace") for k, v in record.headers if k == "ce_type" and v),
            None,
        )
        if route_of_type(hint) is None:
            metrics.FACTS.labels("ignored").inc()
            return None
        try:
            event = decode_record(record, max_bytes=self.max_message_bytes, topic=topic)
        except EventDecodeError:
            metrics.FACTS.labels("undecodable").inc()
            return None
        return notable(event.envelope)

    async def _commit_quietly(self, after: Mapping[tuple[str, int], int]) -> None:
        offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in after.items()}
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:  # the database holds the real positions; this is for lag tools
            log.debug("group commit skipped", extra={"error": str(exc)})
