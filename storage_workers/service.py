"""The storage worker's bootstrap: builds an element's worker and wires it to the broker
(:mod:`~storage_workers.broker_edge`: command subscribers, facts, commits, dead letters), to the
peer table (:mod:`~storage_workers.peer_watch`), to placement and its upload consumer
(:mod:`~storage_workers.upload_placement`, :mod:`~storage_workers.upload_consumer`), to its own
announcements (:mod:`~storage_workers.heartbeats`), TTL expiry, fixity and health; then starts
and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from pydantic import BaseModel
from redis.asyncio import Redis

from auth import (
    DenyListCache,
    RedisDenyList,
    TokenVerifier,
)
from base.health import HealthServer
from base.settings import Settings, broker_settings
from events import Outgoing, Topic, make_broker
from storage_workers import element as element_file
from storage_workers import lifecycle
from storage_workers.admission import make_verifier
from storage_workers.archiving import Archiver, open_cold_tier
from storage_workers.backends import StorageBackend, open_backend
from storage_workers.broker_edge import BrokerEdge
from storage_workers.claims import PostgresClaims, UploadClaims
from storage_workers.config import WorkerConfig
from storage_workers.dependencies import worker_probes
from storage_workers.documents import DocumentRegistry, LocalDocuments, PostgresDocuments
from storage_workers.fixity import AuditPolicy, ElementAuditor, ReadBudget
from storage_workers.heartbeats import Heartbeats
from storage_workers.journal import Journal, recover
from storage_workers.metrics import StorageMetrics
from storage_workers.outages import Outages
from storage_workers.peer_watch import PeerWatch
from storage_workers.placement import PeerTable
from storage_workers.staging import Staging
from storage_workers.upload_consumer import UploadConsumer
from storage_workers.upload_placement import UploadPlacement
from storage_workers.worker import Clock, ElementWorker, Limits, utc_now
from storage_workers.writer_claim import WriterClaim, claim_element

log = logging.getLogger(__name__)


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
        """Every time the element records or announces comes from here."""
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
        self.cold = open_cold_tier(settings, config)
        """The element's cold tier: where an ar element's content goes."""
        self.redis = Redis.from_url(settings.redis_url)
        self.revocations = DenyListCache(
            RedisDenyList(self.redis, prefix=config.revocation_prefix), self.redis
        )
        self.verifier = verifier or make_verifier(config)
        if self.verifier.revocations is None:
            self.verifier = self.verifier.with_revocations(self.revocations)
        self.broker = make_broker(
            broker_settings(settings, client_id=f"storage-{config.element_id}")
        )
        self.outages = Outages({}, on_change=self._dependencies_changed)
        """What is away (probes set at start); consumers pause while anything is."""
        self.edge = BrokerEdge(
            broker=self.broker,
            topics=self.topics,
            element_id=config.element_id,
            config=config,
            metrics=self.metrics,
            outages=self.outages,
            max_message_bytes=settings.max_message_bytes,
        )
        self.publisher = self.edge.publisher
        self.peer_watch = PeerWatch(
            bootstrap_servers=settings.kafka_bootstrap,
            topic=self.topics.name(Topic.ELEMENTS),
            element_id=config.element_id,
            peer_timeout=config.peer_timeout,
            max_message_bytes=settings.max_message_bytes,
        )
        self.claims: UploadClaims | None = (
            PostgresClaims(settings.database_url) if config.upload_claims else None
        )
        # Versions are numbered in the registry every element shares (with claims on), else
        # by this element alone (one element per class).
        self.documents: DocumentRegistry = (
            PostgresDocuments(settings.database_url) if config.upload_claims else LocalDocuments()
        )
        self.worker: ElementWorker | None = None
        self.placement: UploadPlacement | None = None
        self.heartbeats: Heartbeats | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        self.health = HealthServer(self.metrics.registry, self._not_ready)
        self.stopped = asyncio.Event()
        self.writer_claim: WriterClaim | None = None
        self.auditor: ElementAuditor | None = None
        self.archiver: Archiver | None = None
        self.lease_lost = asyncio.Event()
        """Set when another worker took this one's S3 lease over: the service must stop."""

    def _dependencies_changed(self, away: Mapping[str, str]) -> None:
        """Gauges, and placement decided again at once (see ``UploadPlacement.accepting``)."""
        self.metrics.set_dependencies_away(away)
        if self.placement is not None:
            self.placement.due.set()

    @property
    def element_id(self) -> str:
        return self.config.element_id

    @property
    def peers(self) -> PeerTable:
        """The elements this one has heard from."""
        return self.peer_watch.table

    @property
    def uploads(self) -> UploadConsumer | None:
        """The upload subscription while this element consumes its class's upload topic."""
        return self.placement.uploads if self.placement is not None else None

    @property
    def consuming_uploads(self) -> bool:
        """True while this element consumes its class's upload topic."""
        return self.uploads is not None

    def accepting(self) -> bool:
        """Whether this element takes uploads now (mode, capacity, no refusal standing)."""
        assert self.placement is not None
        return self.placement.accepting()

    def fact_registered(self) -> Outgoing:
        assert self.heartbeats is not None
        return self.heartbeats.registered()

    async def heartbeat(self) -> None:
        """Announce liveness and capacity; ElementFull when the full floor is reached."""
        assert self.heartbeats is not None
        await self.heartbeats.send()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover the element, announce it, start consuming."""
        if self.config.health_port is not None:
            await self.health.start(self.config.health_host, self.config.health_port)
        # No command is judged before the deny-list is loaded (fails if Redis can't be reached).
        await self.revocations.start()
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
            now=self.clock(),
        )
        report = await asyncio.to_thread(recover, Journal(self.backend, self.cold))
        if report.entries:
            self.metrics.recoveries.inc(report.entries)
            log.warning("recovered interrupted changes", extra={"report": repr(report)})
        worker = self.worker = self._make_worker(state)
        await lifecycle.load(worker)
        self.outages.probes = worker_probes(
            config=self.config,
            backend=self.backend,
            staging=worker.staging,
            claims=self.claims,
            deny_list=self.verifier.catch_up,
            writer_claim=self.writer_claim,
        )
        archiver = self.archiver = Archiver(
            worker, self.edge.publish, batch_files=self.config.archive_batch_files
        )
        auditor = self.auditor = self._make_auditor(worker)
        await auditor.load()
        placement = self.placement = UploadPlacement(
            worker=worker,
            broker=self.broker,
            topics=self.topics,
            config=self.config,
            metrics=self.metrics,
            outages=self.outages,
            announce=self.edge.publish,
            peers=self.peer_watch,
            claims_settled=self.claims is None,
        )
        heartbeats = self.heartbeats = Heartbeats(
            worker=worker,
            config=self.config,
            element_backend=self.element_backend,
            metrics=self.metrics,
            announce=self.edge.publish,
            placement=placement,
            auditor=auditor,
            archive=archiver.progress,
        )
        heartbeats.update_gauges()
        await self.broker.start()
        await self.edge.publish([heartbeats.registered()], [])
        await lifecycle.announce_leftovers(worker, self.edge.publish)
        await self.edge.start_command_subscribers(worker, element_changed=self._element_changed)
        await self.peer_watch.start()
        self._tasks = [
            asyncio.create_task(heartbeats.run(), name="heartbeat"),
            asyncio.create_task(placement.run(), name="placement"),
            asyncio.create_task(self.peer_watch.run(), name="peers"),
            asyncio.create_task(self._ttl_loop(), name="ttl"),
            asyncio.create_task(self.outages.run(), name="outages"),
            asyncio.create_task(archiver.run(), name="archive"),
        ]
        if self.writer_claim is not None and self.writer_claim.lapses:
            self._tasks.append(
                asyncio.create_task(
                    heartbeats.renew_lease(self.writer_claim, self.lease_lost), name="lease"
                )
            )
        if self.config.fixity_enabled:
            self._tasks.append(
                asyncio.create_task(auditor.run_forever(self.config.fixity_idle_s), name="fixity")
            )
        self._ready = True

    def _make_worker(self, state: element_file.ElementState) -> ElementWorker:
        settings, config = self.settings, self.config
        return ElementWorker(
            backend=self.backend,
            state=state,
            staging=Staging(
                directory=config.staging_dir or settings.data_dir / "staging",
                s3_bucket=config.staging_bucket or settings.s3_bucket,
                s3_prefix=config.staging_prefix,
                s3_endpoint=settings.s3_endpoint,
                s3_access_key=settings.s3_access_key,
                s3_secret_key=settings.s3_secret_key,
                s3_secure=settings.s3_secure,
                s3_region=settings.s3_region,
            ),
            verifier=self.verifier,
            topics=self.topics,
            limits=Limits(
                capacity_bytes=config.capacity_bytes,
                floors=config.floors(),
                max_message_bytes=settings.max_message_bytes,
                max_command_age=timedelta(seconds=config.max_command_age_s),
                replay=config.replay,
                claim_lease_s=config.claim_lease_s,
            ),
            metrics=self.metrics,
            priority=config.priority,
            clock=self.clock,
            claims=self.claims,
            documents=self.documents,
            peer_alive=self.peer_watch.alive,
            cold=self.cold,
            restore_element_id=config.restore_element_id,
        )

    def _make_auditor(self, worker: ElementWorker) -> ElementAuditor:
        config = self.config

        async def publish(payloads: Sequence[BaseModel]) -> None:
            await self.edge.publish([worker.fact(p) for p in payloads], [])

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

    def _element_changed(self) -> None:
        """After an element command: a mode may have changed."""
        if self.heartbeats is not None:
            self.heartbeats.update_gauges()
            # Peers, the index and producers learn at once whether the element takes uploads
            # in its new mode, not a heartbeat interval later.
            self.heartbeats.due.set()
        if self.placement is not None:
            self.placement.due.set()
        if self.archiver is not None:
            self.archiver.due.set()

    def _not_ready(self) -> str | None:
        if not self._ready:
            return f"element {self.element_id}'s worker is starting or stopping: not consuming"
        if self.placement is not None and not self.placement.claims_settled:
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
        if self.placement is not None:
            await self.placement.leave()
        if self.worker is not None:
            await self.worker.drain()
        await self.edge.stop_command_subscribers()
        await self.peer_watch.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.claims is not None:
            with contextlib.suppress(Exception):
                await self.claims.close()
        with contextlib.suppress(Exception):
            await self.documents.close()
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

    async def _ttl_loop(self) -> None:
        """Expiry: TTLs on edit elements, retention periods on rw (and edit) elements; ro and
        ar elements are frozen (:func:`events.modes.retention_expires_in`)."""
        while True:
            await asyncio.sleep(self.config.ttl_sweep_interval_s)
            if self.worker is not None:
                await lifecycle.sweep_element(
                    self.worker,
                    announce=self.edge.publish,
                    restore_warning=timedelta(seconds=self.config.restore_warning_s),
                )


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
