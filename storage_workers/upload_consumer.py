"""An element's subscription to its class's upload topic: batches in, outcomes out, offsets
committed only behind each batch's own durable outcome.

Batches overlap: batch N+1 is admitted (decoded, tokens verified: no element state) while
batch N is written; N+1 is decided and stored only once N is durable, announced and committed,
so offsets are committed in order and every decision sees the files stored before it.

Every batch ends one of three ways (:class:`BatchEnd`):

- ``STORED``: every record has its outcome (stored, rejected, dead-lettered) and is committed;
- ``HANDED_BACK``: the element can't take the rest now; it goes back to the topic and the
  element steps aside (placement);
- ``HELD``: a dependency is away (:mod:`storage_workers.outages`): the batch goes back to the
  topic and the subscription pauses until every dependency answers again; nothing is
  dead-lettered for it;
- ``FAILED``: anything else went wrong (the broker while announcing or committing, the claim
  registry, a bug): it is logged, the batch goes back to the topic and is read again after a
  backoff. Never swallowed, never committed past.

The batch fetched while a batch was being stored was fetched *before* that batch's seek; when
that batch did not end ``STORED`` it goes back too, and no partition is ever sought forward
past an earlier seek of the same subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

import events
from events import Failure, Topic, TopicNames, records_of
from storage_workers.claims import ClaimsUnavailable
from storage_workers.config import WorkerConfig
from storage_workers.metrics import StorageMetrics
from storage_workers.outages import DependencyAway, Outages
from storage_workers.partitions import consumer_of
from storage_workers.redelivery import (
    RETRIED_IN_PLACE,
    Backoff,
    first_offsets,
    retry_in_place,
    seek_back,
)
from storage_workers.upload_claiming import UploadBusyElsewhere
from storage_workers.uploads import AdmittedBatch, BatchOutcome, admit_uploads, store_uploads
from storage_workers.worker import Announce, ElementWorker, Record

log = logging.getLogger(__name__)


class BatchEnd(enum.Enum):
    """How a batch of uploads ended."""

    STORED = "stored"
    HANDED_BACK = "handed_back"
    HELD = "held"
    FAILED = "failed"


class UploadConsumer:
    """One subscription of an element to its class's upload topic (placement starts and stops
    it; a new one is made for every start)."""

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        worker: ElementWorker,
        topic: Topic,
        topics: TopicNames,
        group: str,
        config: WorkerConfig,
        metrics: StorageMetrics,
        announce: Announce,
        step_aside: Callable[[str], None],
        outages: Outages,
    ) -> None:
        self.worker = worker
        self.topic = topic
        self.group = group
        self.config = config
        self.metrics = metrics
        self.announce = announce
        self.step_aside = step_aside
        self.outages = outages
        self._storing: asyncio.Task[BatchEnd] | None = None
        self._sought_to: dict[TopicPartition, int] = {}
        self._backoff = Backoff(config.retry_backoff_s)
        self.subscriber = broker.subscriber(
            topics.name(topic),
            group_id=group,
            batch=True,
            max_records=config.batch_max_records,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=max(100, config.session_timeout_ms // 4),
            fetch_max_wait_ms=config.idle_wait_ms,
            batch_timeout_ms=config.idle_wait_ms,
            persistent=False,
            # Any record, however malformed, reaches our handler (and so a rejection or the DLQ).
            parser=events.parse_any_record,
            decoder=events.raw_body,
        )
        self.subscriber(self._handle)

    async def start(self) -> None:
        """Join the group (the caller bounds how long that may take)."""
        await self.subscriber.start()

    async def stop(self) -> None:
        """Let the batch being stored finish (its offsets are committed through this
        subscription's consumer), then leave the group. The caller bounds the time."""
        if self._storing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._storing)
        await self.subscriber.stop()

    # -- batches -------------------------------------------------------------------------------

    async def _handle(self, body: object, message: KafkaMessage) -> None:
        records = records_of(message.raw_message)
        admitted: AdmittedBatch | None = None
        failure: Exception | None = None
        tried_at = datetime.now(UTC)
        # Fetched before an outage paused the subscription, or from a partition assigned since.
        held = bool(self.outages.away)
        if not held:
            try:
                admitted = await self._admit(records)
            except DependencyAway:
                held = True
            except RETRIED_IN_PLACE as exc:
                failure = exc
            except Exception as exc:
                log.exception("admitting uploads failed; the batch goes back to the topic")
                await self._read_again(message, records, f"admission failed: {exc!r}")
                return
        previous, self._storing = self._storing, None
        if previous is not None and (end := await asyncio.shield(previous)) is not BatchEnd.STORED:
            # Fetched before the previous batch went back: this one goes back too.
            self._seek_back(message, records)
            if end is BatchEnd.FAILED:
                await asyncio.sleep(self._backoff.next_delay())
            return
        if held:
            self._hold(message, records)
            return
        if failure is not None:
            try:
                await self._dead_letter(message, records, "uploads", failure, tried_at)
            except Exception as exc:
                log.exception("dead-lettering uploads failed; the batch goes back to the topic")
                await self._read_again(message, records, f"dead-lettering failed: {exc!r}")
            return
        assert admitted is not None
        self._storing = asyncio.create_task(self._store(message, admitted))

    async def _admit(self, records: Sequence[Record]) -> AdmittedBatch:
        admitted: list[AdmittedBatch] = []

        async def admit() -> None:
            admitted[:] = [await admit_uploads(self.worker, records, self.topic)]

        await retry_in_place(
            admit,
            self.config.retry_attempts,
            self.config.retry_backoff_s,
            self.outages,
            self.config.service_fault_window_s,
        )
        return admitted[0]

    async def _store(self, message: KafkaMessage, batch: AdmittedBatch) -> BatchEnd:
        """Store an admitted batch; every way it can end is one of :class:`BatchEnd`."""
        try:
            try:
                outcome = await self._store_with_retries(message, batch)
            except ClaimsUnavailable as exc:
                await self.outages.confirm(exc)  # the database away: held, not just retried
                raise
        except DependencyAway as exc:
            log.warning("a dependency is away: the batch waits", extra={"why": str(exc)})
            self._hold(message, batch.records)
            return BatchEnd.HELD
        except (UploadBusyElsewhere, ClaimsUnavailable) as exc:
            log.warning("the batch waits and is read again", extra={"why": str(exc)})
            self.metrics.batches_rewound.inc()
            self._seek_back(message, batch.records)
            return BatchEnd.FAILED
        except Exception as exc:
            log.exception("storing uploads failed; the batch goes back to the topic")
            self.metrics.batches_rewound.inc()
            self._seek_back(message, batch.records)
            log.warning("upload batch goes back", extra={"reason": repr(exc)})
            return BatchEnd.FAILED
        if outcome is not None and outcome.handed_back is not None:
            self._seek_back(message, batch.records[outcome.processed :])
            log.warning("handing uploads back", extra={"reason": outcome.handed_back})
            self.step_aside(outcome.handed_back)
            return BatchEnd.HANDED_BACK
        self._sought_to.clear()  # consuming went on from where it was sought back to
        self._backoff.succeeded()
        await self.metrics.lag.observe(message.consumer, self.group, batch.records)
        return BatchEnd.STORED

    async def _store_with_retries(
        self, message: KafkaMessage, batch: AdmittedBatch
    ) -> BatchOutcome | None:
        """The batch stored (retrying storage failures in place), or dead-lettered (None) when
        storage kept failing: then every record has the DLQ entry as its outcome. A batch of
        several records that kept failing is tried again one record at a time (see
        :meth:`_one_by_one`)."""
        outcome: list[BatchOutcome] = []

        async def run() -> None:
            started = time.perf_counter()
            outcome[:] = [
                await store_uploads(
                    self.worker,
                    batch,
                    announce=self.announce,
                    acknowledge=lambda rs: commit(message, rs),
                )
            ]
            self.metrics.latency.labels(self.worker.element_id, self.topic.value).observe(
                time.perf_counter() - started
            )

        tried_at = datetime.now(UTC)
        try:
            await retry_in_place(
                run,
                self.config.retry_attempts,
                self.config.retry_backoff_s,
                self.outages,
                self.config.service_fault_window_s,
            )
        except RETRIED_IN_PLACE as exc:
            if len(batch.records) > 1:
                log.warning(
                    "a batch kept failing: its uploads are tried one at a time",
                    extra={"error": str(exc), "records": len(batch.records)},
                )
                return await self._one_by_one(message, batch)
            await self._dead_letter(message, batch.records, "uploads", exc, tried_at)
            return None
        return outcome[0]

    async def _one_by_one(self, message: KafkaMessage, batch: AdmittedBatch) -> BatchOutcome:
        """Each record of a batch that kept failing, in order, as a batch of its own (with its
        own retries): only the uploads that fail on their own are dead-lettered, so one that
        can never be stored does not take the others of its batch with it."""
        for index, single in enumerate(
            AdmittedBatch([record], [admission])
            for record, admission in zip(batch.records, batch.admissions, strict=True)
        ):
            alone = await self._store_with_retries(message, single)
            if alone is not None and alone.handed_back is not None:
                return BatchOutcome(index, alone.handed_back)
        return BatchOutcome(len(batch.records))

    async def _dead_letter(
        self,
        message: KafkaMessage,
        records: Sequence[Record],
        what: str,
        failure: Exception,
        first_failed_at: datetime,
    ) -> None:
        """Send ``records`` to the DLQ (``what`` failed with ``failure`` on every attempt) and
        commit past them: the DLQ entry is their outcome."""
        attempts = self.config.retry_attempts
        log.error("dead-lettering", extra={"error": f"{what} failed {attempts} times: {failure}"})
        given_up = Failure.of(
            "retries_exhausted", failure, attempts=attempts, first_failed_at=first_failed_at
        )
        dead = [self.worker.dead_letter(r, given_up) for r in records]
        await self.announce([], dead)
        await commit(message, records)

    async def _read_again(self, message: KafkaMessage, records: Sequence[Record], why: str) -> None:
        self.metrics.batches_rewound.inc()
        self._seek_back(message, records)
        log.warning("upload batch goes back", extra={"reason": why})
        await asyncio.sleep(self._backoff.next_delay())

    def _hold(self, message: KafkaMessage, records: Sequence[Record]) -> None:
        """Seek back to ``records`` and pause until every dependency answers again."""
        self.metrics.batches_rewound.inc()
        for tp, offset in first_offsets(records).items():
            self._sought_to[tp] = min(self._sought_to.get(tp, offset), offset)
        consumer = consumer_of(message)
        seek_back(consumer, self._sought_to)
        self.outages.pause(consumer)

    def _seek_back(self, message: KafkaMessage, records: Sequence[Record]) -> None:
        """Seek back to ``records``, never forward past an earlier seek of this subscription."""
        for tp, offset in first_offsets(records).items():
            self._sought_to[tp] = min(self._sought_to.get(tp, offset), offset)
        seek_back(consumer_of(message), self._sought_to)


async def commit(message: KafkaMessage, records: Sequence[Record]) -> None:
    """Commit exactly up to ``records`` (per partition), not whatever was fetched."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    await consumer_of(message).commit(offsets)
