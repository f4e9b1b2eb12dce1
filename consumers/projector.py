"""The projection: records in, one PostgreSQL transaction per batch (its consumer loop is in
:mod:`consumers.consume_loop`).

The offsets that count are the ones in ``projection_offsets`` (written with the rows). On every
partition assignment the consumer seeks to them; Kafka's committed group offsets are also moved
after each transaction, but only so that lag tools see the projector's progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from base import telemetry
from consumers import metrics
from consumers.gaps import REREAD_S, AbsentOffsets
from consumers.handlers import dead_letter_changes, project
from consumers.rewinds import first_offsets, served_past
from consumers.store import (
    ApplyResult,
    PositionedEvent,
    PositionMismatch,
    ProjectionStore,
    plan_batch,
)
from consumers.write_plan import WritePlan
from events import EventDecodeError, Failure, Topic, TopicNames, decode_record
from events.tracing import record_trace_headers

log = logging.getLogger(__name__)

#: What the query projection reads: facts, and upload commands (to show uploads as queued).
PROJECTED_TOPICS: tuple[Topic, ...] = (
    Topic.FILES,
    Topic.ELEMENTS,
    Topic.AUDIT,
    Topic.UPLOADS_EDIT,
    Topic.UPLOADS_RW,
    Topic.DLQ,
)

#: Records decoded between two turns of the event loop (about 1 ms of work).
_DECODE_SLICE = 50


AfterBatch = Callable[[ApplyResult], Awaitable[None]]


class DeadLetterSink(Protocol):
    """Where records the projection can never apply go (the DLQ, or a counter in replays)."""

    async def send(self, record: ConsumerRecord[Any, Any], failure: Failure) -> None: ...


_TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
    asyncpg.InvalidCachedStatementError,
    asyncpg.AdminShutdownError,
    # A server that dies mid-transaction (a crash, SIGKILL) can leave the client's connection
    # mid-operation: the rollback on the way out then fails with this instead of a connection
    # error. The batch is retried on a fresh connection like any other outage.
    asyncpg.InternalClientError,
)


@dataclass(frozen=True)
class DecodedBatch:
    """Records, the changes each asks for, and the writes they come to (planned in advance)."""

    records: Sequence[ConsumerRecord[Any, Any]]
    events: list[PositionedEvent]
    plan: WritePlan


class Projection:
    """Decodes records, dead-letters the undecodable, applies the rest exactly once."""

    def __init__(
        self,
        store: ProjectionStore,
        names: TopicNames,
        dead_letters: DeadLetterSink,
        *,
        max_message_bytes: int,
        after_batch: AfterBatch | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.store = store
        self.names = names
        self.dead_letters = dead_letters
        self.max_message_bytes = max_message_bytes
        self.after_batch = after_batch
        self.max_backoff_s = max_backoff_s
        self.unavailable: str | None = None
        """Why the projection can't apply batches now (its database is away), else None."""
        self._proven_gaps: dict[tuple[str, int], int] = {}
        """Per partition: the broker's log-start offset, when retention removed records past
        the stored position (the only gap a batch may skip)."""
        self._unexplained: dict[tuple[str, int], int] = {}
        """Per partition: how many times in a row a batch started past the stored position
        without the broker proving a gap."""
        self._absent = AbsentOffsets()
        """Per partition: the offsets the broker keeps answering past the stored position."""
        self._sought: dict[tuple[str, int], int] = {}
        """Per partition: where the last rewind sought (see :meth:`seek_again`)."""

    async def handle(
        self, consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> ApplyResult | None:
        """Decode and apply one batch (see :meth:`apply`)."""
        return await self.apply(consumer, await self.decode(records))

    async def decode(self, records: Sequence[ConsumerRecord[Any, Any]]) -> DecodedBatch:
        """The row changes of each record and the writes they come to.

        Undecodable records go to the DLQ (no changes). Decoding is pure CPU: it hands the event
        loop back every few records so that the batch being written meanwhile can send its next
        statement instead of leaving the database idle.
        """
        events = []
        for i, record in enumerate(records, start=1):
            events.append(await self._decode(record))
            if i % _DECODE_SLICE == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0)
        return DecodedBatch(records, events, plan_batch(events))

    async def apply(self, consumer: AIOKafkaConsumer, batch: DecodedBatch) -> ApplyResult | None:
        """Apply one decoded batch; None when the consumer had to seek back (batch dropped).

        With tracing on, each record that carries a ``traceparent`` gets an
        ``artstore.project`` span, the child of the span it names, ended with the batch's
        transaction; records without one get none (heartbeats are not traced)."""
        spans = telemetry.RecordSpans(telemetry.tracer("artstore.projector"), "artstore.project")
        if spans.active:
            for record in batch.records:
                if (headers := record_trace_headers(record.headers)) is not None:
                    spans.open(headers, **_span_attributes(record))
        try:
            result = await self._apply(consumer, batch)
        except BaseException as exc:
            spans.end(exc)
            raise
        spans.end()
        return result

    async def _apply(self, consumer: AIOKafkaConsumer, batch: DecodedBatch) -> ApplyResult | None:
        records, events = batch.records, batch.events
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                result = await self.store.apply(
                    events, plan=batch.plan, tolerate_gaps=self._proven_gaps
                )
                self.unavailable = None
                break
            except PositionMismatch as exc:
                await self._rewind(
                    consumer, exc.seek_to, served_past(events, exc.seek_to), dropped=events
                )
                return None
            except _TRANSIENT as exc:
                attempt += 1
                metrics.DB_RETRIES.inc()
                self.unavailable = f"the projection database is unavailable: {exc}"
                delay = min(self.max_backoff_s, 0.2 * 2 ** min(attempt, 10))
                log.warning(
                    "projection database unavailable; retrying",
                    extra={"attempt": attempt, "delay_s": delay, "error": str(exc)},
                )
                await asyncio.sleep(delay)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
                result = await self._isolate_poison(records, events)
                break
        for tp in result.positions:
            self._proven_gaps.pop(tp, None)
            if tp not in result.holes:
                self._unexplained.pop(tp, None)
                self._absent.forget(tp)
        if result.holes:
            await self._rewind(consumer, result.holes, served_past(events, result.holes))
        self._count(events, result)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(records))
        if self.after_batch is not None:
            await self.after_batch(result)
        return result

    async def _rewind(
        self,
        consumer: AIOKafkaConsumer,
        seek_to: dict[tuple[str, int], int],
        served: dict[tuple[str, int], int],
        *,
        dropped: Sequence[PositionedEvent] = (),
    ) -> None:
        """A batch started past the stored positions (``served``: the first offset the broker
        gave after each one): read again from them, unless the broker proves the records in
        between are not there to read:

        - its log-start offset is past the position (retention removed them); or
        - asked again and again from the position for ``ABSENT_PROOF_S`` (at least
          ``ABSENT_PROOF_READS`` reads, one every ``REREAD_S``), it never served a record
          below some offset: those offsets hold no record any reader will ever get (the
          embedded broker can leave such a hole when it is killed between reserving offsets
          and writing them). The projection goes on from the lowest offset it ever served
          (see :mod:`consumers.gaps`).

        Nothing else counts as proof: a batch that starts late after a broker restart or a
        seek is read again from the stored position (after a short pause, with an error in the
        log, while it keeps happening), rather than skipped.

        ``dropped``: the batch was not applied at all. Its other partitions are sought back to
        their first record in it too: the consumer went past those records, and nothing else
        would bring them back until the next record of the partition arrived (after the last
        fact of a quiet partition, never)."""
        metrics.REWINDS.inc()
        self._sought.clear()
        pause = 0.0
        for (topic, partition), position in seek_to.items():
            tp = TopicPartition(topic, partition)
            start = await _log_start(consumer, tp)
            if start is not None and start > position:
                log.warning(
                    "retention removed records the projection never applied",
                    extra={"partition": f"{topic}[{partition}]", "from": position, "to": start},
                )
                metrics.GAPS.labels(topic, "retention").inc(start - position)
                self._proven_gaps[(topic, partition)] = start
                self._seek(consumer, tp, start)
                continue
            first = served.get((topic, partition))
            proven = (
                None
                if first is None
                else self._absent.proven((topic, partition), position, first, time.monotonic())
            )
            if proven is not None:
                log.error(
                    "the broker has no records at these offsets: going on past them",
                    extra={"partition": f"{topic}[{partition}]", "from": position, "to": proven},
                )
                metrics.GAPS.labels(topic, "absent").inc(proven - position)
                self._proven_gaps[(topic, partition)] = proven
                self._absent.forget((topic, partition))
                self._unexplained.pop((topic, partition), None)
                self._seek(consumer, tp, proven)
                continue
            times = self._unexplained.get((topic, partition), 0) + 1
            self._unexplained[(topic, partition)] = times
            self._seek(consumer, tp, position)
            if times > 1:
                # Investigating a gap: read again at a short, fixed interval, so that the
                # proof (or the records) comes in about ABSENT_PROOF_S, not after a backoff.
                pause = max(pause, REREAD_S)
                log.error(
                    "the broker keeps serving records past the projection's position; "
                    "reading again from it",
                    extra={
                        "partition": f"{topic}[{partition}]",
                        "position": position,
                        "served": first,
                        "attempt": times,
                        "delay_s": REREAD_S,
                    },
                )
            else:
                log.info(
                    "projection rewinds",
                    extra={
                        "partition": f"{topic}[{partition}]",
                        "position": position,
                        "served": first,
                    },
                )
        for (topic, partition), first in first_offsets(dropped).items():
            if (topic, partition) not in seek_to:
                self._seek(consumer, TopicPartition(topic, partition), first)
        if pause:
            await asyncio.sleep(pause)

    def _seek(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        """Seek ``tp`` (if still assigned) and remember it until the next batch is fetched."""
        if tp in consumer.assignment():
            consumer.seek(tp, offset)
            self._sought[(tp.topic, tp.partition)] = offset

    def seek_again(self, consumer: AIOKafkaConsumer, stale: DecodedBatch | None) -> None:
        """The batch ``stale``, fetched while the last one was applied, is dropped because
        that one was: seek again where the rewind sought, and every other partition of
        ``stale`` back to its first record in it.

        ``stale`` may have been fetched *after* the rewind's seeks, so the consumer's position
        has gone past them again: without this the next batch would start further on, and the
        broker's answer the gap proof counts would be the loop's own doing. Its other
        partitions' records were consumed and are not applied."""
        again = dict(first_offsets(stale.events if stale is not None else ()))
        again.update(self._sought)
        for (topic, partition), offset in again.items():
            tp = TopicPartition(topic, partition)
            if tp in consumer.assignment():
                consumer.seek(tp, offset)
        self._sought.clear()

    async def _decode(self, record: ConsumerRecord[Any, Any]) -> PositionedEvent:
        topic = self.names.logical(record.topic)
        if topic is Topic.DLQ:  # read to mark dead-lettered uploads failed; never re-lettered
            changes = dead_letter_changes(record, self.names, self.max_message_bytes)
            return PositionedEvent(record.topic, record.partition, record.offset, changes)
        try:
            received = decode_record(record, max_bytes=self.max_message_bytes, topic=topic)
        except EventDecodeError as exc:
            await self.dead_letters.send(record, Failure.of(exc.reason.value, exc))
            metrics.EVENTS.labels(record.topic, "dead_lettered").inc()
            log.warning(
                "undecodable record sent to the DLQ",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": exc.reason.value,
                },
            )
            return PositionedEvent(record.topic, record.partition, record.offset)
        return PositionedEvent(record.topic, record.partition, record.offset, project(received))

    async def _isolate_poison(
        self,
        records: Sequence[ConsumerRecord[Any, Any]],
        events: Sequence[PositionedEvent],
    ) -> ApplyResult:
        """The database refused the batch's data: apply one by one, dead-letter the refused."""
        total = ApplyResult()
        for record, event in zip(records, events, strict=True):
            try:
                result = await self.store.apply([event], tolerate_gaps=self._proven_gaps)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                await self.dead_letters.send(record, Failure.of("database_refused", exc))
                metrics.EVENTS.labels(record.topic, "dead_lettered").inc()
                empty = PositionedEvent(event.topic, event.partition, event.offset)
                result = await self.store.apply([empty], tolerate_gaps=self._proven_gaps)
            total.applied += result.applied
            total.skipped += result.skipped
            total.changed_files = total.changed_files or result.changed_files
            total.positions.update(result.positions)
        return total

    def _count(self, events: Sequence[PositionedEvent], result: ApplyResult) -> None:
        if not events:
            return
        topic = events[0].topic
        if result.applied:
            metrics.EVENTS.labels(topic, "applied").inc(result.applied)
        if result.skipped:
            metrics.EVENTS.labels(topic, "skipped").inc(result.skipped)


def _span_attributes(record: ConsumerRecord[Any, Any]) -> dict[str, Any]:
    """What a record's ``artstore.project`` span says about it."""
    event_type = next((raw for name, raw in record.headers or () if name == "ce_type"), None)
    return {
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
        "artstore.event_type": event_type.decode("utf-8", "replace") if event_type else None,
        "artstore.subject": record.key.decode("utf-8", "replace") if record.key else None,
    }


async def _log_start(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The first offset the broker still holds for ``tp`` (None if it can't say now)."""
    try:
        found = await consumer.beginning_offsets([tp])
    except Exception as exc:
        log.warning("could not ask the broker for a log-start offset", extra={"error": str(exc)})
        return None
    start = found.get(tp)
    return int(start) if start is not None else None
