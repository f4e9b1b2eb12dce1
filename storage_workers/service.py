"""Wires an element's worker to the broker: subscribers, placement, heartbeats, TTL, health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from redis.asyncio import Redis

import events
from artstore.settings import Settings, broker_settings
from auth import (
    DenyListCache,
    HttpJwksSource,
    JwksSource,
    RedisDenyList,
    StaticJwksSource,
    TokenVerifier,
)
from events import (
    CapacityStatus,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    EventPublisher,
    Mode,
    Outgoing,
    OutgoingRecord,
    Topic,
    make_broker,
    records_of,
)
from storage_workers import element as element_file
from storage_workers import lifecycle
from storage_workers.admission import TransientFailure
from storage_workers.backends import BackendError, StorageBackend, open_backend
from storage_workers.config import WorkerConfig
from storage_workers.health import HealthServer
from storage_workers.journal import Journal, recover
from storage_workers.metrics import StorageMetrics
from storage_workers.placement import PeerStatus, PeerTable, should_consume
from storage_workers.staging import Staging
from storage_workers.uploads import AdmittedBatch, BatchOutcome, admit_uploads, store_uploads
from storage_workers.worker import Clock, ElementWorker, Limits, Record, utc_now

log = logging.getLogger(__name__)

UPLOAD_TOPIC = {Mode.EDIT: Topic.UPLOADS_EDIT, Mode.RW: Topic.UPLOADS_RW}


def make_verifier(config: WorkerConfig) -> TokenVerifier:
    """The project's one token verifier, with keys from a JWKS URL or file."""
    keys: JwksSource
    if config.jwks_file is not None:
        keys = StaticJwksSource(json.loads(config.jwks_file.read_text()))
    elif config.jwks_url is not None:
        keys = HttpJwksSource(config.jwks_url)
    else:
        raise ValueError("set ARTSTORE_STORAGE_JWKS_URL (or _JWKS_FILE) to verify commands")
    return TokenVerifier(keys, issuer=config.token_issuer, audience=config.token_audience)


class StorageService:
    """Runs one element's worker until stopped."""

    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        *,
        verifier: TokenVerifier | None = None,
        backend: StorageBackend | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.config = config
        self.clock = clock
        self.topics = settings.topic_names()
        self.metrics = StorageMetrics(config.element_id)
        self.element_backend = config.element_backend(
            data_dir=settings.data_dir,
            s3_endpoint=settings.s3_endpoint,
            s3_bucket=settings.s3_bucket,
            s3_secure=settings.s3_secure,
            s3_region=settings.s3_region,
        )
        self.backend = backend or open_backend(
            self.element_backend,
            s3_access_key=settings.s3_access_key,
            s3_secret_key=settings.s3_secret_key,
        )
        self.redis = Redis.from_url(settings.redis_url)
        self.revocations = DenyListCache(
            RedisDenyList(self.redis, prefix=config.revocation_prefix), self.redis
        )
        self.verifier = verifier or make_verifier(config)
        if self.verifier.revocations is None:
            self.verifier = self.verifier.with_revocations(self.revocations)
        self.broker: KafkaBroker = make_broker(
            broker_settings(settings, client_id=f"storage-{config.element_id}")
        )
        self.publisher = EventPublisher(
            self.broker, self.topics, max_message_bytes=settings.max_message_bytes
        )
        self.peers = PeerTable()
        self.worker: ElementWorker | None = None
        self._upload_sub: Any = None
        self._storing: asyncio.Task[bool] | None = None
        """The upload batch being stored; the next batch is admitted meanwhile."""
        self._handed_back_to: dict[TopicPartition, int] = {}
        """Where this upload subscription's hand-backs sought each partition to."""
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: AIOKafkaConsumer | None = None
        self._ready = False
        self._full_announced = False
        self._handed_back_until = 0.0
        self._placement_lock = asyncio.Lock()
        self.health = HealthServer(self.metrics.registry, lambda: self._ready)
        self.stopped = asyncio.Event()

    @property
    def element_id(self) -> str:
        return self.config.element_id

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the element, announce it, start consuming."""
        if self.config.health_port is not None:
            await self.health.start(self.config.health_host, self.config.health_port)
        # No command is judged before the deny-list is loaded (fails if Redis can't be reached).
        await self.revocations.start()
        now = datetime.now(UTC)
        state = await asyncio.to_thread(
            element_file.load_or_create,
            self.backend,
            element_id=self.element_id,
            initial_mode=self.config.mode,
            now=now,
        )
        report = await asyncio.to_thread(recover, Journal(self.backend))
        if report.entries:
            self.metrics.recoveries.inc(report.entries)
            log.warning("recovered interrupted changes", extra={"report": repr(report)})
        staging_dir = self.config.staging_dir or self.settings.data_dir / "staging"
        self.worker = ElementWorker(
            backend=self.backend,
            state=state,
            staging=Staging(
                directory=staging_dir,
                s3_bucket=self.config.staging_bucket or self.settings.s3_bucket,
                s3_prefix=self.config.staging_prefix,
                s3_endpoint=self.settings.s3_endpoint,
                s3_access_key=self.settings.s3_access_key,
                s3_secret_key=self.settings.s3_secret_key,
                s3_secure=self.settings.s3_secure,
                s3_region=self.settings.s3_region,
            ),
            verifier=self.verifier,
            topics=self.topics,
            limits=Limits(
                capacity_bytes=self.config.capacity_bytes,
                floors=self.config.floors(),
                max_message_bytes=self.settings.max_message_bytes,
                max_command_age=timedelta(seconds=self.config.max_command_age_s),
                replay=self.config.replay,
            ),
            metrics=self.metrics,
            priority=self.config.priority,
            clock=self.clock,
        )
        await self.worker.load()
        await self.broker.start()
        await self._publish([self.fact_registered()], [])
        await lifecycle.announce_leftovers(self.worker, self._publish)
        await self._start_command_subscribers()
        await self._start_watcher()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._watch_loop(), name="peers"),
            asyncio.create_task(self._ttl_loop(), name="ttl"),
        ]
        self._ready = True

    async def stop(self) -> None:
        """Stop consuming (offsets of unfinished work stay uncommitted) and disconnect."""
        self._ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._stop_uploads()
        if self.worker is not None:
            await self.worker.drain()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.stop()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.health.stop()
        await self.revocations.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        self.stopped.set()

    # -- publishing and committing -------------------------------------------------------------

    async def _publish(self, facts: Sequence[Outgoing], dead: Sequence[OutgoingRecord]) -> None:
        records = [self.publisher.encode(f.envelope) for f in facts] + list(dead)
        if records:
            await self.publisher.send_records(records)

    @staticmethod
    async def _commit(message: KafkaMessage, records: Sequence[Record]) -> None:
        """Commit exactly up to ``records`` (per partition), not whatever was fetched."""
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        consumer: Any = message.consumer
        await consumer.commit(offsets)

    async def _retry(self, action: Any) -> None:
        """Run ``action``; retry transient failures with bounded backoff; raise the last one."""
        attempts = self.config.retry_attempts
        for attempt in range(1, attempts + 1):
            try:
                await action()
                return
            except (BackendError, TransientFailure, OSError) as exc:
                if attempt == attempts:
                    raise
                delay = min(self.config.retry_backoff_s * 2 ** (attempt - 1), 10.0)
                log.warning("transient failure, retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)

    async def _with_retries(self, message: KafkaMessage, what: str, action: Any) -> None:
        """Run ``action`` with retries (:meth:`_retry`); when they run out, dead-letter."""
        try:
            await self._retry(action)
        except (BackendError, TransientFailure, OSError) as exc:
            await self._dead_letter(message, what, exc)

    async def _dead_letter(self, message: KafkaMessage, what: str, failure: Exception) -> None:
        """Send every record of ``message`` to the DLQ (``what`` failed with ``failure`` on
        every attempt) and commit past them."""
        assert self.worker is not None
        records = records_of(message.raw_message)
        attempts = self.config.retry_attempts
        error = f"{what} failed {attempts} times: {failure}"
        log.error("dead-lettering", extra={"error": error})
        await self._publish([], [self.worker.dead_letter(r, error, attempts) for r in records])
        await self._commit(message, records)

    # -- subscribers ---------------------------------------------------------------------------

    def _group(self, what: str) -> str:
        return f"{self.topics.prefix}.storage.{what}"

    async def _start_command_subscribers(self) -> None:
        worker = self.worker
        assert worker is not None
        for topic, process in (
            (Topic.FILE_COMMANDS, worker.process_file_command),
            (Topic.ELEMENT_COMMANDS, worker.process_element_command),
        ):
            sub = self.broker.subscriber(
                self.topics.name(topic),
                group_id=self._group(f"{self.element_id}.{topic.value}"),
                ack_policy=AckPolicy.MANUAL,
                auto_offset_reset="earliest",
                session_timeout_ms=self.config.session_timeout_ms,
                heartbeat_interval_ms=max(100, self.config.session_timeout_ms // 4),
                fetch_max_wait_ms=self.config.idle_wait_ms,
                persistent=False,
            )

            def bind(proc: Any, name: str) -> Any:
                async def handle(body: Any, message: KafkaMessage) -> None:
                    (record,) = records_of(message.raw_message)

                    async def run() -> None:
                        await proc(
                            record,
                            announce=self._publish,
                            acknowledge=lambda rs: self._commit(message, rs),
                        )

                    await self._with_retries(message, name, run)
                    if name == Topic.ELEMENT_COMMANDS.value:
                        await self._place()

                return handle

            sub(bind(process, topic.value))
            self._subs.append(sub)
        # Each start joins a consumer group (the broker delays a first join by a few seconds):
        # join them together rather than one after the other.
        await asyncio.gather(*(sub.start() for sub in self._subs))

    async def _start_uploads(self) -> None:
        worker = self.worker
        assert worker is not None
        # A batch stored by an earlier subscription is done (stopping waited for it) and says
        # nothing about the batches of this one (it may have handed uploads back).
        self._storing = None
        self._handed_back_to = {}
        topic = UPLOAD_TOPIC[worker.state.mode if worker.state.mode in UPLOAD_TOPIC else Mode.RW]
        sub = self.broker.subscriber(
            self.topics.name(topic),
            group_id=self._group(f"uploads.{topic.value.rsplit('.', 1)[-1]}"),
            batch=True,
            max_records=self.config.batch_max_records,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.config.session_timeout_ms // 4),
            fetch_max_wait_ms=self.config.idle_wait_ms,
            batch_timeout_ms=self.config.idle_wait_ms,
            persistent=False,
        )

        async def store(message: KafkaMessage, batch: AdmittedBatch) -> bool:
            """Store an admitted batch (with retries); True if it handed uploads back."""
            outcome: list[BatchOutcome] = []

            async def run() -> None:
                started = time.perf_counter()
                result = await store_uploads(
                    worker,
                    batch,
                    announce=self._publish,
                    acknowledge=lambda rs: self._commit(message, rs),
                )
                self.metrics.latency.labels(self.element_id, topic.value).observe(
                    time.perf_counter() - started
                )
                outcome[:] = [result]

            await self._with_retries(message, "uploads", run)
            if outcome and outcome[0].handed_back is not None:
                rest = batch.records[outcome[0].processed :]
                self._hand_back(message, rest, outcome[0].handed_back)
                return True
            self._handed_back_to.clear()  # consuming went on from where it was sought back to
            return False

        async def handle(body: Any, message: KafkaMessage) -> None:
            # Batches overlap: this one is admitted (decoded, its tokens verified: no element
            # state) while the previous one is still being written; it is decided and stored
            # only once the previous one is durable, announced and committed, so offsets are
            # committed in order and every decision sees the files stored before it.
            records = records_of(message.raw_message)
            admitted: list[AdmittedBatch] = []
            failure: Exception | None = None

            async def admit() -> None:
                admitted[:] = [await admit_uploads(worker, records, topic)]

            try:
                await self._retry(admit)
            except (BackendError, TransientFailure, OSError) as exc:
                failure = exc
            previous, self._storing = self._storing, None
            if previous is not None and await asyncio.shield(previous):
                # The previous batch handed uploads back; this one was fetched before the
                # seek, so it goes back too.
                self._hand_back(message, records, "an earlier batch was handed back")
                return
            if failure is not None:
                await self._dead_letter(message, "uploads", failure)
                return
            self._storing = asyncio.create_task(store(message, admitted[0]))

        sub(handle)
        await sub.start()
        self._upload_sub = sub
        self.metrics.consuming_uploads.set(1)
        log.info("consuming uploads", extra={"topic": topic.value})

    def _hand_back(self, message: KafkaMessage, rest: Sequence[Record], why: str) -> None:
        """Put unprocessed uploads back on the topic and step aside.

        Never seeks a partition forward past an earlier hand-back of this subscription: a
        batch fetched before that seek holds later records of the same partitions."""
        for record in rest:
            tp = TopicPartition(record.topic, record.partition)
            self._handed_back_to[tp] = min(
                self._handed_back_to.get(tp, record.offset), record.offset
            )
        for tp, offset in self._handed_back_to.items():
            message.consumer.seek(tp, offset)
        log.warning("handing uploads back", extra={"reason": why})
        self._handed_back_until = time.monotonic() + self.config.heartbeat_interval_s
        asyncio.get_running_loop().create_task(self._place())

    async def _stop_uploads(self) -> None:
        sub, self._upload_sub = self._upload_sub, None
        if sub is not None:
            # The batch being stored finishes first: its offsets are committed through the
            # consumer that is about to stop. (The next batch still learns whether it handed
            # uploads back: the task stays where the handler looks for it.)
            if self._storing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._storing)
            with contextlib.suppress(Exception):
                await sub.stop()
            self.metrics.consuming_uploads.set(0)
            log.info("stopped consuming uploads")

    # -- placement, heartbeats, peers, TTL -----------------------------------------------------

    def accepting(self) -> bool:
        worker = self.worker
        assert worker is not None
        if worker.state.mode not in UPLOAD_TOPIC:
            return False
        if time.monotonic() < self._handed_back_until:
            return False
        return worker.capacity().status is not CapacityStatus.FULL

    async def _place(self) -> None:
        """Start or stop consuming uploads as placement says."""
        assert self.worker is not None
        async with self._placement_lock:
            me = PeerStatus(
                self.element_id,
                self.worker.state.mode,
                self.config.priority,
                self.accepting(),
                time.monotonic(),
            )
            consume = should_consume(
                me,
                self.peers.all(),
                strategy=self.config.placement,
                now=time.monotonic(),
                timeout=self.config.peer_timeout,
            )
            if consume and self._upload_sub is None:
                await self._start_uploads()
            elif not consume and self._upload_sub is not None:
                await self._stop_uploads()

    def fact_registered(self) -> Outgoing:
        worker = self.worker
        assert worker is not None
        capacity = worker.capacity()
        return worker.fact(
            ElementRegistered(
                element_id=self.element_id,
                mode=worker.state.mode,
                backend=self.element_backend,
                priority=self.config.priority,
                capacity_bytes=capacity.capacity_bytes,
                free_bytes=capacity.free_bytes,
                retention_days=self.config.retention_days,
                worker=f"{socket.gethostname()}:{__import__('os').getpid()}",
                started_at=datetime.now(UTC),
            )
        )

    async def heartbeat(self) -> None:
        """Announce liveness and capacity; ElementFull when the full floor is reached."""
        worker = self.worker
        assert worker is not None
        capacity = worker.capacity()
        self.metrics.capacity.set(capacity.capacity_bytes)
        self.metrics.used.set(capacity.used_bytes)
        self.metrics.free.set(capacity.free_bytes)
        now = datetime.now(UTC)
        facts = [
            worker.fact(
                ElementHeartbeat(
                    element_id=self.element_id,
                    mode=worker.state.mode,
                    priority=self.config.priority,
                    capacity_bytes=capacity.capacity_bytes,
                    used_bytes=capacity.used_bytes,
                    free_bytes=capacity.free_bytes,
                    file_count=len(worker.catalogue),
                    status=capacity.status,
                    accepting_uploads=self.accepting(),
                    sent_at=now,
                )
            )
        ]
        full = capacity.status is CapacityStatus.FULL
        if full and not self._full_announced:
            log.warning(
                "element is full: no more uploads",
                extra={"free_bytes": capacity.free_bytes, "floor_bytes": capacity.full_floor},
            )
            facts.append(
                worker.fact(
                    ElementFull(
                        element_id=self.element_id,
                        free_bytes=capacity.free_bytes,
                        floor_bytes=capacity.full_floor,
                        detected_at=now,
                    )
                )
            )
        self._full_announced = full
        await self._publish(facts, [])

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._place()
                await self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _start_watcher(self) -> None:
        """Read the elements topic from a little before now, to learn who is alive."""
        name = self.topics.name(Topic.ELEMENTS)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [
                TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()
            ]
        consumer.assign(partitions)
        since = int((time.time() - 2 * self.config.peer_timeout) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])
        self._watcher = consumer
        # Catch up before the first placement decision, so we know who is alive.
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            await self._read_peers(timeout_ms=200)

    async def _read_peers(self, timeout_ms: int) -> None:
        assert self._watcher is not None
        batches = await self._watcher.getmany(timeout_ms=timeout_ms, max_records=1000)
        now = time.monotonic()
        for records in batches.values():
            for record in records:
                with contextlib.suppress(events.EventDecodeError):
                    event = events.decode_record(record, max_bytes=self.settings.max_message_bytes)
                    if isinstance(event.data, ElementHeartbeat | ElementRegistered):
                        age = time.time() - record.timestamp / 1000
                        self.peers.heard(event.data, now - max(0.0, age))

    async def _watch_loop(self) -> None:
        while True:
            try:
                await self._read_peers(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading peers failed")
                await asyncio.sleep(1)

    async def _ttl_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.ttl_sweep_interval_s)
            worker = self.worker
            if worker is None or worker.state.mode is not Mode.EDIT:
                continue
            try:
                await worker.sweep_expired(announce=self._publish)
            except Exception:
                log.exception("TTL sweep failed")


async def run_service(settings: Settings, config: WorkerConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    import signal

    service = StorageService(settings, config)
    await service.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await service.stop()
