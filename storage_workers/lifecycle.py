"""An element's life around the commands: loading it, expiring temporary files, and finishing
the removal of staged bytes that a crash interrupted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from events import DeletionReason
from storage_workers import element as element_file
from storage_workers.catalogue import Catalogue
from storage_workers.sidecar import Templates

if TYPE_CHECKING:
    from storage_workers.worker import Announce, ElementWorker, Record

log = logging.getLogger(__name__)


async def load(worker: ElementWorker) -> None:
    """Scan the element: templates, files, tombstones; then finish interrupted releases."""
    worker.templates = Templates(
        await asyncio.to_thread(element_file.load_templates, worker.backend)
    )
    worker.catalogue = await asyncio.to_thread(Catalogue.load, worker.backend, worker.element_id)
    worker.deleted = await asyncio.to_thread(_tombstones, worker)
    await release_leftover_staging(worker)


def _tombstones(worker: ElementWorker) -> set[str]:
    prefix = element_file.TOMBSTONES_DIR.rstrip("/")
    return {i.key.rsplit("/", 1)[-1].removesuffix(".json") for i in worker.backend.list(prefix)}


async def release_leftover_staging(worker: ElementWorker) -> int:
    """Remove the staged bytes of files already stored, that a crash left behind.

    Release records (see :mod:`~storage_workers.journal`) name the claim checks of finished
    changes. A claim check is removed only if the element holds its file (or held it and
    deleted it since): the file index is the proof that nobody needs those bytes again. The
    claim checks of uploads that were rolled back are kept, for their redelivery. Returns how
    many staged objects were removed.
    """

    def release() -> int:
        removed = 0
        for entry in worker.journal.releases():
            done = [
                claim_check
                for file_id, claim_check in entry.staged.items()
                if file_id in worker.deleted or worker.catalogue.get(UUID(file_id)) is not None
            ]
            worker.staging.remove_all(done)
            removed += len(done)
            worker.journal.released(entry)
        return removed

    removed = await asyncio.to_thread(release)
    if removed:
        log.warning("removed staged bytes a crash left behind", extra={"removed": removed})
    return removed


async def sweep_expired(worker: ElementWorker, *, announce: Announce, limit: int = 200) -> int:
    """Delete expired temporary files through the journalled delete path."""
    async with worker.lock:
        due = worker.catalogue.expired(worker.clock())[:limit]
        if not due:
            return 0
        changes = [
            worker.removal(
                e.file_id,
                e.storage_path,
                DeletionReason.TTL_EXPIRED,
                f"storage:{worker.element_id}:ttl",
                None,
            )
            for e in due
        ]

        async def no_ack(_records: Sequence[Record]) -> None:
            return None

        await worker.commit(changes, [], [], [], announce, no_ack)
        return len(changes)
