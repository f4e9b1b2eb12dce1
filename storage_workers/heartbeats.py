"""What an element announces about itself: ElementRegistered at start, an ElementHeartbeat
every interval (ElementFull once when it stops taking uploads), its gauges, and the renewal of
its writer lease beside the heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from events import (
    ArchiveProgress,
    CapacityStatus,
    ElementBackend,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    Outgoing,
)
from events.modes import UPLOAD_TOPIC
from storage_workers.capacity import Capacity
from storage_workers.config import WorkerConfig
from storage_workers.fixity import ElementAuditor
from storage_workers.metrics import StorageMetrics
from storage_workers.upload_placement import UploadPlacement
from storage_workers.worker import Announce, ElementWorker
from storage_workers.writer_claim import LeaseLost, WriterClaim

log = logging.getLogger(__name__)


class Heartbeats:
    """The element's own facts and gauges."""

    def __init__(
        self,
        *,
        worker: ElementWorker,
        config: WorkerConfig,
        element_backend: ElementBackend,
        metrics: StorageMetrics,
        announce: Announce,
        placement: UploadPlacement,
        auditor: ElementAuditor | None,
        archive: Callable[[], ArchiveProgress | None] = lambda: None,
    ) -> None:
        self.worker = worker
        self.config = config
        self.element_backend = element_backend
        self.metrics = metrics
        self.announce = announce
        self.placement = placement
        self.auditor = auditor
        self.archive = archive
        """An ar element's move to its cold tier, as heartbeats announce it."""
        self._full_announced = False
        self.due = asyncio.Event()
        """Set to send the next heartbeat now rather than at the end of the interval."""

    @property
    def element_id(self) -> str:
        return self.config.element_id

    def registered(self) -> Outgoing:
        """ElementRegistered: the element, its backend and capacity, and who runs it."""
        worker = self.worker
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
                worker=f"{socket.gethostname()}:{os.getpid()}",
                started_at=worker.clock(),
            )
        )

    async def send(self) -> None:
        """Announce liveness and capacity; ElementFull when the full floor is reached."""
        worker = self.worker
        capacity = worker.capacity()
        self.update_gauges(capacity)
        now = worker.clock()
        accepting = self.placement.accepting()
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
                    accepting_uploads=accepting,
                    sent_at=now,
                    fixity_last_full_pass=(
                        self.auditor.last_full_pass if self.auditor is not None else None
                    ),
                    archive=self.archive(),
                )
            )
        ]
        refused = (
            worker.state.mode in UPLOAD_TOPIC
            and not accepting
            and not self.placement.standing_aside()  # away, not full: the outage says so
        )
        full = capacity.status is CapacityStatus.FULL or refused
        if full and not self._full_announced:
            detail = (
                f"free space reached the full floor ({capacity.full_floor} bytes)"
                if capacity.status is CapacityStatus.FULL
                else f"can't take what is offered: {self.placement.refusal}"
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
            await self.announce(facts, [])
        self._full_announced = full

    def update_gauges(self, capacity: Capacity | None = None) -> None:
        """What the element's gauges show: capacity, mode, capacity status and fixity."""
        capacity = capacity or self.worker.capacity()
        metrics = self.metrics
        metrics.capacity.set(capacity.capacity_bytes)
        metrics.used.set(capacity.used_bytes)
        metrics.free.set(capacity.free_bytes)
        metrics.set_mode(self.worker.state.mode)
        metrics.set_capacity_status(capacity.status)
        progress = self.archive()
        if progress is not None:
            for where, count in (
                ("online", progress.files_online),
                ("cold", progress.files_cold),
                ("failed", progress.files_failed),
            ):
                metrics.archive_files.labels(self.element_id, where).set(count)
        if self.auditor is not None:
            state = self.auditor.state
            metrics.fixity_failed.set(len(state.failed))
            last = state.last_full_pass
            if last is not None:
                metrics.fixity_unreadable.set(last.unreadable)
                metrics.fixity_last_pass.set(last.finished_at.timestamp())

    async def run(self) -> None:
        """Send a heartbeat every interval (the lease is renewed apart: :meth:`renew_lease`)."""
        while True:
            try:
                await self.send()
            except Exception:
                log.exception("heartbeat failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.heartbeat_interval_s):
                    await self.due.wait()
            self.due.clear()

    async def renew_lease(self, claim: WriterClaim, lease_lost: asyncio.Event) -> None:
        """Renew an S3 element's writer lease every heartbeat interval, apart from the
        heartbeats: while its storage is away they keep going, so peers don't take a live
        element for a dead one. Sets ``lease_lost`` and returns when another worker took the
        lease over."""
        while True:
            try:
                async with asyncio.timeout(self.config.heartbeat_interval_s * 2):
                    await asyncio.to_thread(claim.renew)
            except LeaseLost:
                log.critical("writer lease lost: stopping", exc_info=True)
                lease_lost.set()
                return
            except Exception as exc:  # its storage away: the outage is reported where it is met
                log.warning(
                    "renewing the writer lease failed",
                    extra={"error": str(exc) or type(exc).__name__},
                )
            await asyncio.sleep(self.config.heartbeat_interval_s)
