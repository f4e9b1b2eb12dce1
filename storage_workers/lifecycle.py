"""An element's life around the commands: loading it, expiring temporary files, and finishing
what a crash interrupted after the journal commit (removing staged bytes, announcing expiries)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from events import DeletionReason, FileDeleted
from storage_workers import element as element_file
from storage_workers import restored_copies
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
    if worker.claims is None:
        # With claims, staged bytes wait until the claims say whose uploads they are
        # (see storage_workers.settlement).
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
            if not entry.unannounced:
                worker.journal.released(entry)
        return removed

    removed = await asyncio.to_thread(release)
    if removed:
        log.warning("removed staged bytes a crash left behind", extra={"removed": removed})
    return removed


async def announce_leftovers(worker: ElementWorker, announce: Announce) -> int:
    """Publish the facts of changes that a crash left unannounced (TTL expiry), from their
    records' tombstones; then forget the records. Returns how many facts went out.

    A crash after the facts were published but before the record was removed announces them
    twice; a FileDeleted is idempotent for every reader.
    """
    entries = [e for e in await asyncio.to_thread(worker.journal.releases) if e.unannounced]
    published = 0
    for entry in entries:
        facts = [
            worker.fact(FileDeleted.model_validate_json(tombstone))
            for tombstone in entry.tombstones.values()
        ]
        if facts:
            await announce(facts, [])
        await asyncio.to_thread(worker.journal.released, entry)
        published += len(facts)
    if published:
        log.warning("announced deletions a crash left unannounced", extra={"facts": published})
    return published


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

        # No command asked for these deletes, so none would be redelivered to announce them
        # after a crash: the journal keeps their record until they are published.
        await worker.commit(
            changes, [], [], [], announce, no_ack, release=True, redeliverable=False
        )
        return len(changes)


async def sweep_edit_element(
    worker: ElementWorker, *, announce: Announce, restore_warning: timedelta
) -> None:
    """An edit element's periodic sweep: expired temporary files, then restored copies (warned
    about before their expiry, removed at it). A failure is logged; the next sweep retries."""
    try:
        await sweep_expired(worker, announce=announce)
        await restored_copies.sweep_restored(worker, announce=announce, warn_before=restore_warning)
    except Exception:
        log.exception("TTL sweep failed")
