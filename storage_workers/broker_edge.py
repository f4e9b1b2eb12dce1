"""Where an element's worker meets the broker for its commands: facts published with their audit
events and dead letters, exactly the handled records committed, failures retried in place and
then dead-lettered, outages waited out. The upload topic has its own consumer
(:mod:`storage_workers.upload_consumer`); placement decides when it runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.middlewares import AckPolicy

import events
from base import telemetry
from events import (
    EventPublisher,
    Mode,
    Outgoing,
    OutgoingRecord,
    Topic,
    TopicNames,
    audit_of_fact,
)
from events.tracing import record_trace_headers
from storage_workers import commands, restored_copies
from storage_workers.config import WorkerConfig
from storage_workers.groups import storage_group
from storage_workers.metrics import StorageMetrics
from storage_workers.outages import DependencyAway, Outages
from storage_workers.partitions import consumer_of
from storage_workers.redelivery import RETRIED_IN_PLACE, Backoff, retry_in_place, seek_back
from storage_workers.upload_consumer import commit
from storage_workers.worker import Acknowledge, Announce, ElementWorker, Record

log = logging.getLogger(__name__)


class Process(Protocol):
    """:func:`storage_workers.commands.process_file_command` or ``process_element_command``."""

    async def __call__(
        self,
        worker: ElementWorker,
        record: Record,
        *,
        announce: Announce,
        acknowledge: Acknowledge,
    ) -> None: ...


def partition_of(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


class BrokerEdge:
    """The element's publisher and its file and element command subscribers."""

    def __init__(
        self,
        *,
        broker: KafkaBroker,
        topics: TopicNames,
        element_id: str,
        config: WorkerConfig,
        metrics: StorageMetrics,
        outages: Outages,
        max_message_bytes: int,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.element_id = element_id
        self.config = config
        self.metrics = metrics
        self.outages = outages
        self.publisher = EventPublisher(broker, topics, max_message_bytes=max_message_bytes)
        self.subscribers: list[DefaultSubscriber] = []

    async def publish(self, facts: Sequence[Outgoing], dead: Sequence[OutgoingRecord]) -> None:
        """Send ``facts`` (each with its audit event) and the dead letters ``dead`` together."""
        # A change's audit event goes out in the same send as its fact, before the command is
        # committed: while Kafka is away neither leaves, and the redelivered command sends both.
        # Each carries the trace of the fact it comes with: the span that handled its command.
        audits = [
            (a, f.trace)
            for f in facts
            if (a := audit_of_fact(f.envelope, actor=f.actor)) is not None
        ]
        records = [self.publisher.encode(f.envelope, trace=f.trace) for f in facts]
        records += [self.publisher.encode(a, trace=trace) for a, trace in audits]
        records += list(dead)
        if records:
            await self.publisher.send_records(records)

    async def dead_letter(
        self,
        worker: ElementWorker,
        message: KafkaMessage,
        what: str,
        failure: Exception,
        first_failed_at: datetime,
    ) -> None:
        """Send every record of ``message`` to the DLQ (``what`` failed with ``failure`` on
        every attempt) and commit past them: the DLQ entry is their outcome."""
        records = events.records_of(message.raw_message)
        attempts = self.config.retry_attempts
        log.error("dead-lettering", extra={"error": f"{what} failed {attempts} times: {failure}"})
        given_up = events.Failure.of(
            "retries_exhausted", failure, attempts=attempts, first_failed_at=first_failed_at
        )
        await self.publish([], [worker.dead_letter(r, given_up) for r in records])
        await commit(message, records)

    async def start_command_subscribers(
        self, worker: ElementWorker, *, element_changed: Callable[[], None]
    ) -> None:
        """Consume the file and element commands, one record at a time; ``element_changed``
        is called after each element command (a mode may have changed)."""
        subscriptions: list[tuple[Topic, Process]] = [
            (Topic.FILE_COMMANDS, commands.process_file_command),
            (Topic.ELEMENT_COMMANDS, commands.process_element_command),
        ]
        if worker.state.mode is Mode.EDIT:
            # Restore elements are edit elements: they keep the copies ar elements hand over.
            keep_for = timedelta(seconds=self.config.restore_ttl_s)
            subscriptions.append(
                (Topic.RESTORES, partial(restored_copies.process_restore_staged, keep_for=keep_for))
            )
        for topic, process in subscriptions:
            group = storage_group(self.topics, self.element_id, topic)
            sub = self.broker.subscriber(
                self.topics.name(topic),
                group_id=group,
                ack_policy=AckPolicy.MANUAL,
                auto_offset_reset="earliest",
                session_timeout_ms=self.config.session_timeout_ms,
                heartbeat_interval_ms=max(100, self.config.session_timeout_ms // 4),
                fetch_max_wait_ms=self.config.idle_wait_ms,
                persistent=False,
                parser=events.parse_any_record,
                decoder=events.raw_body,
            )
            handler = CommandHandler(
                self,
                worker,
                process,
                topic=topic,
                group=group,
                after=element_changed if topic is Topic.ELEMENT_COMMANDS else None,
            )
            sub(handler.handle)
            self.subscribers.append(sub)
        # Each start joins a consumer group (the broker delays a first join by a few seconds):
        # join them together rather than one after the other.
        await asyncio.gather(*(sub.start() for sub in self.subscribers))

    async def stop_command_subscribers(self) -> None:
        for sub in self.subscribers:
            with contextlib.suppress(Exception):
                await sub.stop()


class CommandHandler:
    """One command topic's handler: each record is processed, retried in place, held while a
    dependency is away, read again after any other failure, dead-lettered once retries are
    spent; only a handled record is committed."""

    def __init__(
        self,
        edge: BrokerEdge,
        worker: ElementWorker,
        process: Process,
        *,
        topic: Topic,
        group: str,
        after: Callable[[], None] | None,
    ) -> None:
        self.edge = edge
        self.worker = worker
        self.process = process
        self.name = topic.value
        self.group = group
        self.after = after
        self.backoff = Backoff(edge.config.retry_backoff_s)

    async def handle(self, body: object, message: KafkaMessage) -> None:
        (record,) = events.records_of(message.raw_message)
        with telemetry.consuming(
            telemetry.tracer("artstore.storage"),
            "artstore.command",
            record_trace_headers(record.headers),
            **{
                "artstore.element_id": self.edge.element_id,
                "messaging.destination.name": record.topic,
                "messaging.kafka.message.offset": record.offset,
            },
        ):
            await self.handle_command(record, message)

    def hold(self, message: KafkaMessage, record: Record) -> None:
        """A command held for an outage: read again from it once every dependency answers."""
        consumer = consumer_of(message)
        seek_back(consumer, {partition_of(record): record.offset})
        self.edge.outages.pause(consumer)

    async def handle_command(self, record: Record, message: KafkaMessage) -> None:
        edge = self.edge
        outages = edge.outages
        if outages.away:  # fetched before the pause, or newly assigned
            self.hold(message, record)
            return
        announce: Announce = edge.publish

        async def run() -> None:
            await self.process(
                self.worker, record, announce=announce, acknowledge=lambda rs: commit(message, rs)
            )

        tried_at = datetime.now(UTC)
        try:
            try:
                await retry_in_place(
                    run,
                    edge.config.retry_attempts,
                    edge.config.retry_backoff_s,
                    outages,
                    edge.config.service_fault_window_s,
                )
            except RETRIED_IN_PLACE as exc:
                await edge.dead_letter(self.worker, message, self.name, exc, tried_at)
        except DependencyAway as exc:
            log.warning("a command waits for an outage", extra={"why": str(exc)})
            self.hold(message, record)
            return
        except Exception:
            # Read it again later: committing a later record would skip this one.
            log.exception("command failed; it is read again", extra={"topic": self.name})
            seek_back(consumer_of(message), {partition_of(record): record.offset})
            await asyncio.sleep(self.backoff.next_delay())
            return
        self.backoff.succeeded()
        await edge.metrics.lag.observe(message.consumer, self.group, [record])
        if self.after is not None:
            self.after()
