"""An ``ar`` element's move to its cold tier: batches through :func:`cold_move.move_to_cold`,
its progress, and its end (``ElementArchived``).

The mode changes at once: ``ChangeMode ro -> ar`` records ``ar`` with an archive state
``archiving`` in element.json and announces ``ModeChanged``; content reads are refused from then
on, as for any ``ar`` element. The move follows in the background, a batch at a time under the
worker's lock (so no command or fixity confirmation sees a file half moved), resumes after a
restart from what the sidecars say, and ends by announcing ``ElementArchived`` and recording
``archived`` in element.json. Heartbeats carry its progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from base.settings import Settings
from events import ArchiveProgress, ArchiveState, ElementArchived, Mode
from storage_workers import element as element_file
from storage_workers.backends import StorageBackend, open_backend
from storage_workers.catalogue import CatalogueEntry
from storage_workers.cold_move import ColdMove, move_to_cold
from storage_workers.config import WorkerConfig
from storage_workers.worker import Announce, ElementWorker

log = logging.getLogger(__name__)


def open_cold_tier(settings: Settings, config: WorkerConfig) -> StorageBackend | None:
    """The element's cold tier, if it has one (made at first use, like the element)."""
    location = config.cold_location(
        data_dir=settings.data_dir,
        s3_endpoint=settings.s3_endpoint,
        s3_bucket=settings.s3_bucket,
        s3_secure=settings.s3_secure,
        s3_region=settings.s3_region,
    )
    if location is None:
        return None
    return open_backend(
        location,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
        create=True,
    )


class Archiver:
    """Moves an ``ar`` element's content to its cold tier until none is left online."""

    def __init__(self, worker: ElementWorker, announce: Announce, *, batch_files: int = 32) -> None:
        self.worker = worker
        self.announce = announce
        self.batch_files = batch_files
        self.failed: dict[UUID, str] = {}
        """Files whose online copy could not be moved, and why (tried again at the next start)."""
        self.due = asyncio.Event()
        """Set to look for work now (after a mode change)."""

    def progress(self) -> ArchiveProgress | None:
        """What heartbeats say about the move (None: the element is not ar)."""
        worker = self.worker
        record = worker.state.archive
        if worker.state.mode is not Mode.AR or record is None:
            return None
        entries = worker.catalogue.entries()
        cold = sum(1 for e in entries if e.cold)
        return ArchiveProgress(
            state=record.state,
            in_place=record.in_place,
            files_online=len(entries) - cold,
            files_cold=cold,
            files_failed=len(self.failed),
            started_at=record.started_at,
            finished_at=record.finished_at,
        )

    def pending(self) -> bool:
        """Whether there is a move to make or finish."""
        return self.worker.cold is not None and self.worker.state.archive_pending

    async def run(self) -> None:
        """Move whatever is due, then wait to be told there is more."""
        while True:
            if self.pending():
                try:
                    await self.archive()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("moving content to the cold tier failed; retrying")
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5):
                            await self.due.wait()
                    self.due.clear()
                    continue
            await self.due.wait()
            self.due.clear()

    async def archive(self) -> int:
        """Move every online file to the cold tier; announce the end. Returns files moved."""
        worker = self.worker
        cold = worker.cold
        assert cold is not None
        moved = 0
        async with worker.lock:
            record = worker.state.archive
            if record is None or record.in_place:
                # An element that became ar before it had a cold tier: its move starts now.
                state = worker.state.archiving(worker.clock())
                await asyncio.to_thread(element_file.save, worker.backend, state)
                worker.state = state
        while True:
            async with worker.lock:
                batch = [e for e in worker.catalogue.online() if e.file_id not in self.failed][
                    : self.batch_files
                ]
                if not batch:
                    break
                moved += await self._move(batch)
        if self.failed:
            log.error(
                "files left online: their online copy could not be moved",
                extra={"files": {str(k): v for k, v in self.failed.items()}},
            )
            return moved
        await self._finish()
        return moved

    async def _move(self, batch: list[CatalogueEntry]) -> int:
        worker = self.worker
        assert worker.cold is not None
        moves = []
        for entry in batch:
            sidecar = await worker.read_sidecar(entry.file_id)
            if sidecar is None:
                self.failed[entry.file_id] = f"the sidecar of {entry.storage_path} is unreadable"
                continue
            moves.append(ColdMove(sidecar))
        await asyncio.to_thread(
            move_to_cold, worker.backend, worker.cold, worker.journal, moves, now=worker.clock()
        )
        for move in moves:
            if move.moved is not None and move.encoded is not None:
                worker.catalogue.add(CatalogueEntry.of(move.moved, move.encoded))
                worker.metrics.cold_moved.inc()
            elif move.failure is not None:
                self.failed[move.sidecar.file_id] = move.failure
        return sum(1 for m in moves if m.moved is not None)

    async def _finish(self) -> None:
        """Announce ElementArchived, then record it: a crash in between announces it again at
        the next start (the fact is idempotent), never not at all."""
        worker = self.worker
        async with worker.lock:
            record = worker.state.archive
            if record is None or record.state is ArchiveState.ARCHIVED:
                return
            now = worker.clock()
            entries = worker.catalogue.entries()
            await self.announce(
                [
                    worker.fact(
                        ElementArchived(
                            element_id=worker.element_id,
                            files_cold=len(entries),
                            bytes_cold=sum(e.file_size for e in entries),
                            started_at=record.started_at,
                            finished_at=now,
                        )
                    )
                ],
                [],
            )
            state = worker.state.archived(now)
            await asyncio.to_thread(element_file.save, worker.backend, state)
            worker.state = state
        log.info("element archived: all content on the cold tier")
