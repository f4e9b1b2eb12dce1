"""An element's life around the commands: loading it, expiring temporary files, and finishing
what a crash interrupted after the journal commit (removing staged bytes, announcing expiries)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from events import ExpiryHeld, FileDeleted, Mode, Outgoing
from events.modes import retention_expires_in
from storage_workers import element as element_file
from storage_workers import restored_copies
from storage_workers.catalogue import Catalogue, Due
from storage_workers.claims import ClaimsUnavailable
from storage_workers.documents import DocumentFile
from storage_workers.sidecar import Templates

if TYPE_CHECKING:
    from storage_workers.worker import Announce, ElementWorker, Record

log = logging.getLogger(__name__)


async def load(worker: ElementWorker) -> None:
    """Scan the element: templates, files, tombstones, restored copies; then finish
    interrupted releases."""
    worker.templates = Templates(
        await asyncio.to_thread(element_file.load_templates, worker.backend)
    )
    worker.catalogue = await asyncio.to_thread(Catalogue.load, worker.backend, worker.element_id)
    worker.deleted = await asyncio.to_thread(_tombstones, worker)
    # Restored copies kept before this start take room from the first hand-over and heartbeat
    # on, not only from the first sweep.
    worker.restored_bytes = await asyncio.to_thread(restored_copies.kept_bytes, worker)
    await sync_documents(worker)
    if worker.claims is None:
        # With claims, staged bytes wait until the claims say whose uploads they are
        # (see storage_workers.settlement).
        await release_leftover_staging(worker)


async def sync_documents(worker: ElementWorker) -> None:
    """Tell the document registry what this element holds and has deleted: the registry is an
    index of the sidecars, re-filled from every element at start. An unreachable registry is
    logged, not fatal: uploads check it again (and wait for it) when they need it."""
    files = [
        DocumentFile(e.file_id, e.document_id or e.file_id, e.document_version, e.uploaded_by)
        for e in worker.catalogue.entries()
    ]
    try:
        await worker.documents.sync(
            worker.element_id, files, [UUID(i) for i in sorted(worker.deleted)]
        )
    except ClaimsUnavailable as exc:
        log.warning("document registry not synced at start", extra={"error": str(exc)})


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
    """Delete files whose TTL (edit) or retention period (rw; see
    :func:`events.modes.retention_expires_in`) is over, through the journalled delete path.
    A file under legal hold is kept: its refused expiry is announced once (``ExpiryHeld``),
    and it goes at the first sweep after its hold is released."""
    async with worker.lock:
        now = worker.clock()
        due = worker.catalogue.expired(
            now, retention_applies=retention_expires_in(worker.state.mode)
        )
        held = [d for d in due if d.entry.held]
        notices = await _held_notices(worker, held, now)
        due = [d for d in due if not d.entry.held][:limit]
        if not due:
            if notices:
                await announce(notices, [])
            return 0
        changes = [
            worker.removal(
                d.entry.file_id,
                d.entry.storage_path,
                d.reason,
                f"storage:{worker.element_id}:{d.reason.value.removesuffix('_expired')}",
                None,
            )
            for d in due
        ]

        async def no_ack(_records: Sequence[Record]) -> None:
            return None

        # No command asked for these deletes, so none would be redelivered to announce them
        # after a crash: the journal keeps their record until they are published.
        await worker.commit(
            changes, notices, [], [], announce, no_ack, release=True, redeliverable=False
        )
        return len(changes)


async def _held_notices(
    worker: ElementWorker, held: Sequence[Due], now: datetime
) -> list[Outgoing]:
    """``ExpiryHeld`` for each held file found due for the first time under its hold."""
    notices: list[Outgoing] = []
    for d in held:
        placed_at = d.entry.hold_placed_at
        if placed_at is None or not worker.held_expiries.first_time(d.entry.file_id, placed_at):
            continue
        sidecar = await worker.read_sidecar(d.entry.file_id)
        if sidecar is None or sidecar.legal_hold is None:
            continue
        notices.append(
            worker.fact(
                ExpiryHeld(
                    file_id=d.entry.file_id,
                    element_id=worker.element_id,
                    expiry=d.reason,
                    due_at=d.due_at,
                    hold=sidecar.legal_hold,
                    noticed_at=now,
                )
            )
        )
    return notices


async def sweep_element(
    worker: ElementWorker, *, announce: Announce, restore_warning: timedelta
) -> None:
    """An element's periodic sweep: files whose TTL or retention period is over (where its
    mode lets them expire), then, on an edit element, restored copies (warned about before
    their expiry, removed at it). A failure is logged; the next sweep retries."""
    mode = worker.state.mode
    try:
        if retention_expires_in(mode):
            await sweep_expired(worker, announce=announce)
        if mode is Mode.EDIT:
            await restored_copies.sweep_restored(
                worker, announce=announce, warn_before=restore_warning
            )
    except Exception:
        log.exception("expiry sweep failed")
