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
from artstore import telemetry
from artstore.health import HealthServer
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
    audit_of_fact,
    make_broker,
    records_of,
)
from events.admin import topic_partitions
from events.tracing import record_trace_headers
from storage_workers import element as element_file
from storage_workers import lifecycle
from storage_workers.backends import StorageBackend, open_backend
from storage_workers.capacity import Capacity
from storage_workers.claims import ClaimsUnavailable, PostgresClaims, UploadClaims
from storage_workers.config import WorkerConfig
from storage_workers.dependencies import worker_probes
from storage_workers.fixity import AuditPolicy, ElementAuditor, ReadBudget
from storage_workers.groups import storage_group
from storage_workers.journal import Journal, recover
from storage_workers.metrics import StorageMetrics
from storage_workers.outages import DependencyAway, Outages
from storage_workers.placement import PeerStatus, PeerTable, should_consume
from storage_workers.redelivery import RETRIED_IN_PLACE, Backoff, retry_in_place, seek_back
from storage_workers.staging import Staging
from storage_workers.upload_consumer import UploadConsumer, commit
from storage_workers.worker import Clock, ElementWorker, Limits, Record, utc_now
from storage_workers.writer_claim import LeaseLost, WriterClaim, claim_element

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
            create=True,
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
        self.claims: UploadClaims | None = (
            PostgresClaims(settings.database_url) if config.upload_claims else None
        )
        self.worker: ElementWorker | None = None
        self.uploads: UploadConsumer | None = None
        """The upload subscription while this element consumes its class's upload topic."""
        self._claims_settled = self.claims is None
        self._refused_at_free: int | None = None
        """Free bytes when the element last handed uploads back for want of room: it takes
        uploads again only once it has more room than that (no ping-pong)."""
        self._refusal = ""
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: AIOKafkaConsumer | None = None
        self._ready = False
        self._full_announced = False
        self._placement_due = asyncio.Event()
        self.outages = Outages({}, on_change=self.metrics.set_dependencies_away)
        """What is away (probes set at start); consumers pause while anything is."""
        self.health = HealthServer(self.metrics.registry, self._not_ready)
        self.stopped = asyncio.Event()
        self.writer_claim: WriterClaim | None = None
        self.auditor: ElementAuditor | None = None
        self.lease_lost = asyncio.Event()
        """Set when another worker took this one's S3 lease over: the service must stop."""

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
        # One writer per element: before anything in the element is read or written.
        self.writer_claim = await asyncio.to_thread(
            claim_element,
            self.backend,
            self.element_id,
            lease_ttl=timedelta(seconds=self.config.lease_ttl_s),
        )
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
                claim_lease_s=self.config.claim_lease_s,
            ),
            metrics=self.metrics,
            priority=self.config.priority,
            clock=self.clock,
            claims=self.claims,
            peer_alive=self._peer_alive,
        )
        await self.worker.load()
        self.outages.probes = worker_probes(
            config=self.config,
            backend=self.backend,
            staging=self.worker.staging,
            claims=self.claims,
            deny_list=self.verifier.catch_up,
            writer_claim=self.writer_claim,
        )
        self.auditor = self._make_auditor(self.worker)
        await self.auditor.load()
        self._update_gauges(self.worker, self.worker.capacity())
        await self.broker.start()
        await self._publish([self.fact_registered()], [])
        await lifecycle.announce_leftovers(self.worker, self._publish)
        await self._start_command_subscribers()
        await self._start_watcher()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._placement_loop(), name="placement"),
            asyncio.create_task(self._watch_loop(), name="peers"),
            asyncio.create_task(self._ttl_loop(), name="ttl"),
            asyncio.create_task(self.outages.run(), name="outages"),
        ]
        if self.writer_claim is not None and self.writer_claim.lapses:
            self._tasks.append(asyncio.create_task(self._lease_loop(), name="lease"))
        if self.config.fixity_enabled:
            self._tasks.append(
                asyncio.create_task(
                    self.auditor.run_forever(self.config.fixity_idle_s), name="fixity"
                )
            )
        self._ready = True

    def _not_ready(self) -> str | None:
        if not self._ready:
            return f"element {self.element_id}'s worker is starting or stopping: not consuming"
        if not self._claims_settled:
            # Until then no upload is consumed and a crash's staged bytes are still there.
            return f"element {self.element_id} is settling its uploads with the upload claims"
        if (away := self.outages.reason()) is not None:
            return f"element {self.element_id} is {away}"
        return None

    async def stop(self) -> None:
        """Stop consuming (offsets of unfinished work stay uncommitted) and disconnect."""
        self._ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._leave_uploads()
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
        if self.claims is not None:
            with contextlib.suppress(Exception):
                await self.claims.close()
        if self.auditor is not None:
            self.auditor.close()
        if self.writer_claim is not None:
            await asyncio.to_thread(self.writer_claim.release)
            self.writer_claim = None
        await self.health.stop()
        await self.revocations.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        self.stopped.set()

    @property
    def consuming_uploads(self) -> bool:
        """True while this element consumes its class's upload topic."""
        return self.uploads is not None

    def _make_auditor(self, worker: ElementWorker) -> ElementAuditor:
        config = self.config

        async def publish(payloads: Sequence[Any]) -> None:
            await self._publish([worker.fact(p) for p in payloads], [])

        mb = config.fixity_read_mb_per_s
        return ElementAuditor(
            worker,
            publish,
            period=timedelta(days=config.fixity_period_days),
            budget=ReadBudget(None if mb is None else mb * 1e6, config.fixity_files_per_s),
            policy=AuditPolicy(config.fixity_confirmations, config.fixity_read_attempts),
            concurrency=config.fixity_concurrency,
            processes=config.fixity_processes,
        )

    # -- publishing and committing -------------------------------------------------------------

    async def _publish(self, facts: Sequence[Outgoing], dead: Sequence[OutgoingRecord]) -> None:
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

    async def _dead_letter(
        self, message: KafkaMessage, what: str, failure: Exception, first_failed_at: datetime
    ) -> None:
        """Send every record of ``message`` to the DLQ (``what`` failed with ``failure`` on
        every attempt) and commit past them: the DLQ entry is their outcome."""
        assert self.worker is not None
        records = records_of(message.raw_message)
        attempts = self.config.retry_attempts
        log.error("dead-lettering", extra={"error": f"{what} failed {attempts} times: {failure}"})
        given_up = events.Failure.of(
            "retries_exhausted", failure, attempts=attempts, first_failed_at=first_failed_at
        )
        await self._publish([], [self.worker.dead_letter(r, given_up) for r in records])
        await commit(message, records)

    # -- subscribers ---------------------------------------------------------------------------

    async def _start_command_subscribers(self) -> None:
        worker = self.worker
        assert worker is not None
        for topic, process in (
            (Topic.FILE_COMMANDS, worker.process_file_command),
            (Topic.ELEMENT_COMMANDS, worker.process_element_command),
        ):
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

            def bind(proc: Any, name: str, group: str) -> Any:
                backoff = Backoff(self.config.retry_backoff_s)

                async def handle(body: Any, message: KafkaMessage) -> None:
                    (record,) = records_of(message.raw_message)
                    with telemetry.consuming(
                        telemetry.tracer("artstore.storage"),
                        "artstore.command",
                        record_trace_headers(record.headers),
                        **{
                            "artstore.element_id": self.element_id,
                            "messaging.destination.name": record.topic,
                            "messaging.kafka.message.offset": record.offset,
                        },
                    ):
                        await handle_command(record, message)

                async def handle_command(record: Record, message: KafkaMessage) -> None:
                    if self.outages.away:  # fetched before the pause, or newly assigned
                        self._hold(message.consumer, record)
                        return

                    async def run() -> None:
                        await proc(
                            record,
                            announce=self._publish,
                            acknowledge=lambda rs: commit(message, rs),
                        )

                    tried_at = datetime.now(UTC)
                    try:
                        try:
                            await retry_in_place(
                                run,
                                self.config.retry_attempts,
                                self.config.retry_backoff_s,
                                self.outages,
                            )
                        except RETRIED_IN_PLACE as exc:
                            await self._dead_letter(message, name, exc, tried_at)
                    except DependencyAway as exc:
                        log.warning("a command waits for an outage", extra={"why": str(exc)})
                        self._hold(message.consumer, record)
                        return
                    except Exception:
                        # Read it again later: committing a later record would skip this one.
                        log.exception("command failed; it is read again", extra={"topic": name})
                        seek_back(message.consumer, {_partition_of(record): record.offset})
                        await asyncio.sleep(backoff.next_delay())
                        return
                    backoff.succeeded()
                    await self.metrics.lag.observe(message.consumer, group, [record])
                    if name == Topic.ELEMENT_COMMANDS.value:
                        self._update_gauges(worker, worker.capacity())  # a mode may have changed
                        self._placement_due.set()
                        # Peers, the index and producers learn at once whether the element takes
                        # uploads in its new mode, not a heartbeat interval later.
                        try:
                            await self.heartbeat()
                        except Exception:
                            log.exception("heartbeat after an element command failed")

                return handle

            sub(bind(process, topic.value, group))
            self._subs.append(sub)
        # Each start joins a consumer group (the broker delays a first join by a few seconds):
        # join them together rather than one after the other.
        await asyncio.gather(*(sub.start() for sub in self._subs))

    async def _join_uploads(self) -> None:
        """Start consuming the class's upload topic; bounded in time (retried by placement)."""
        worker = self.worker
        assert worker is not None
        topic = UPLOAD_TOPIC[worker.state.mode if worker.state.mode in UPLOAD_TOPIC else Mode.RW]
        uploads = UploadConsumer(
            broker=self.broker,
            worker=worker,
            topic=topic,
            topics=self.topics,
            group=storage_group(self.topics, self.element_id, topic),
            config=self.config,
            metrics=self.metrics,
            announce=self._publish,
            step_aside=self._step_aside,
            outages=self.outages,
        )
        try:
            async with asyncio.timeout(self.config.placement_timeout_s):
                await uploads.start()
        except TimeoutError:
            self.metrics.placement_timeouts.inc()
            log.error(
                "joining the upload group took too long; retrying",
                extra={"timeout_s": self.config.placement_timeout_s},
            )
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.placement_timeout_s):
                    await uploads.subscriber.stop()
            return
        self.uploads = uploads
        self.metrics.consuming_uploads.set(1)
        log.info("consuming uploads", extra={"topic": topic.value})

    async def _leave_uploads(self) -> None:
        """Stop consuming uploads (the batch being stored finishes first); bounded in time."""
        uploads, self.uploads = self.uploads, None
        if uploads is None:
            return
        self.metrics.consuming_uploads.set(0)
        try:
            async with asyncio.timeout(self.config.placement_timeout_s):
                await uploads.stop()
        except TimeoutError:
            self.metrics.placement_timeouts.inc()
            log.error(
                "leaving the upload group took too long; its session expires on the broker",
                extra={"timeout_s": self.config.placement_timeout_s},
            )
        except Exception:
            log.exception("leaving the upload group failed")
        log.info("stopped consuming uploads")

    def _hold(self, consumer: Any, record: Record) -> None:
        """A command held for an outage: read again from it once every dependency answers."""
        seek_back(consumer, {_partition_of(record): record.offset})
        self.outages.pause(consumer)

    def _step_aside(self, why: str) -> None:
        """The element handed uploads back: it can't take what is offered. When that is for
        want of room, it refuses uploads until it has more room than now (and says so with
        ElementFull), so placement does not hand the topic back and forth."""
        worker = self.worker
        assert worker is not None
        if worker.state.mode in UPLOAD_TOPIC:
            self._refused_at_free = worker.capacity().free_bytes
            self._refusal = why
        self._placement_due.set()

    # -- placement, heartbeats, peers, TTL -----------------------------------------------------

    def accepting(self) -> bool:
        """Whether this element takes uploads now (mode, capacity, no refusal standing)."""
        worker = self.worker
        assert worker is not None
        if worker.state.mode not in UPLOAD_TOPIC:
            return False
        capacity = worker.capacity()
        if self._refused_at_free is not None:
            if capacity.free_bytes <= self._refused_at_free:
                return False
            self._refused_at_free = None  # room was freed since: try again
        return capacity.status is not CapacityStatus.FULL

    def _peer_alive(self, element_id: str) -> bool:
        if element_id == self.element_id:
            return True
        now = time.monotonic()
        return any(
            p.element_id == element_id and now - p.seen_at <= self.config.peer_timeout
            for p in self.peers.all()
        )

    async def _placement_loop(self) -> None:
        """Decide placement every heartbeat interval, or at once when something changed.

        Runs on its own: heartbeats and commands keep flowing whatever placement does, and
        every join or leave is bounded in time, then retried here."""
        while True:
            try:
                await self._place()
            except Exception:
                log.exception("placement failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.heartbeat_interval_s):
                    await self._placement_due.wait()
            self._placement_due.clear()

    async def _place(self) -> None:
        """Start or stop consuming uploads as placement says."""
        assert self.worker is not None
        if not self._claims_settled:
            try:
                async with asyncio.timeout(self.config.placement_timeout_s):
                    settled = await self.worker.reconcile_claims()
            except (TimeoutError, ClaimsUnavailable, *RETRIED_IN_PLACE) as exc:
                log.warning("upload claims not settled yet", extra={"error": str(exc)})
                return
            self._claims_settled = True
            if settled:
                log.warning("settled unfinished upload claims", extra={"claims": settled})
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
        if consume and self.uploads is None:
            await self._join_uploads()
        elif not consume and self.uploads is not None:
            await self._leave_uploads()

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
        self._update_gauges(worker, capacity)
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
                    fixity_last_full_pass=(
                        self.auditor.last_full_pass if self.auditor is not None else None
                    ),
                )
            )
        ]
        refused = worker.state.mode in UPLOAD_TOPIC and not self.accepting()
        full = capacity.status is CapacityStatus.FULL or refused
        if full and not self._full_announced:
            detail = (
                f"free space reached the full floor ({capacity.full_floor} bytes)"
                if capacity.status is CapacityStatus.FULL
                else f"can't take what is offered: {self._refusal}"
            )
            log.warning(
                "element is full: no more uploads",
                extra={"free_bytes": capacity.free_bytes, "detail": detail},
            )
            facts.append(
                worker.fact(
                    ElementFull(
                        element_id=self.element_id,
                        free_bytes=capacity.free_bytes,
                        floor_bytes=capacity.full_floor,
                        detected_at=now,
                        detail=detail,
                    )
                )
            )
        async with asyncio.timeout(self.config.placement_timeout_s):
            await self._publish(facts, [])
        self._full_announced = full

    def _update_gauges(self, worker: ElementWorker, capacity: Capacity) -> None:
        """What the element's gauges show: capacity, mode, capacity status and fixity."""
        metrics = self.metrics
        metrics.capacity.set(capacity.capacity_bytes)
        metrics.used.set(capacity.used_bytes)
        metrics.free.set(capacity.free_bytes)
        metrics.set_mode(worker.state.mode)
        metrics.set_capacity_status(capacity.status)
        if self.auditor is not None:
            state = self.auditor.state
            metrics.fixity_failed.set(len(state.failed))
            last = state.last_full_pass
            if last is not None:
                metrics.fixity_unreadable.set(last.unreadable)
                metrics.fixity_last_pass.set(last.finished_at.timestamp())

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _lease_loop(self) -> None:
        """Renew an S3 element's writer lease every heartbeat interval, apart from the
        heartbeats: while its storage is away they keep going, so peers don't take a live
        element for a dead one."""
        claim = self.writer_claim
        assert claim is not None
        while True:
            try:
                async with asyncio.timeout(self.config.heartbeat_interval_s * 2):
                    await asyncio.to_thread(claim.renew)
            except LeaseLost:
                log.critical("writer lease lost: stopping", exc_info=True)
                self.lease_lost.set()
                return
            except Exception as exc:  # its storage away: the outage is reported where it is met
                log.warning(
                    "renewing the writer lease failed",
                    extra={"error": str(exc) or type(exc).__name__},
                )
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _start_watcher(self) -> None:
        """Read the elements topic from a little before now, to learn who is alive."""
        name = self.topics.name(Topic.ELEMENTS)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        partitions = await topic_partitions(self.settings.kafka_bootstrap, [name])
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


def _partition_of(record: Record) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


async def run_service(settings: Settings, config: WorkerConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    import signal

    service = StorageService(settings, config)
    await service.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    lost = asyncio.create_task(service.lease_lost.wait())
    await asyncio.wait([stopping, lost], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    lost.cancel()
    await service.stop()
    if service.lease_lost.is_set():
        raise SystemExit(3)
