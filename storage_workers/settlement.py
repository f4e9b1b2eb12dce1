"""Settling an element's uploads with the shared claims after a crash, before it takes new ones.

A worker killed after its files became durable but before the claims heard of it leaves
uploads that another element may have taken over meanwhile (this one looked dead). The claims
decide who holds an upload, so on its next start the element:

1. records, for every upload a crash left in its release records (see
   :mod:`~storage_workers.journal`), that it holds it; an upload whose claim another element
   took over meanwhile is *withdrawn*: its data file and sidecar are removed through the
   journal (no tombstone, no fact: this element never announced it), and its staged bytes are
   left for the element that owns it now;
2. removes the staged bytes of the uploads it keeps, then forgets the records;
3. settles its unfinished claims: a file durable here is recorded as stored, the rest released.

Nothing here runs before the claims answer, and the element consumes no upload until it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from storage_workers.claims import StoredUpload, UploadClaims
from storage_workers.journal import JournalOp, new_entry, recover_entry
from storage_workers.lifecycle import release_leftover_staging

if TYPE_CHECKING:
    from storage_workers.worker import ElementWorker

log = logging.getLogger(__name__)


async def reconcile_claims(worker: ElementWorker) -> int:
    """Settle the element's uploads with the claims after a crash (none to settle without
    claims). Returns how many were settled."""
    if worker.claims is None:
        return 0
    return await settle_claims(worker, worker.claims)


async def settle_claims(worker: ElementWorker, claims: UploadClaims) -> int:
    """Steps 1-3 above. Returns how many uploads were settled (withdrawn ones included)."""
    withdrawn = await _settle_leftover_uploads(worker, claims)
    await release_leftover_staging(worker)
    unfinished = await claims.unfinished(worker.element_id)
    held = await _held(worker, unfinished)
    await claims.stored(worker.element_id, held)
    kept = {s.file_id for s in held}
    await claims.release(worker.element_id, [i for i in unfinished if i not in kept])
    return len(withdrawn) + len(unfinished)


async def _settle_leftover_uploads(worker: ElementWorker, claims: UploadClaims) -> list[UUID]:
    entries = await asyncio.to_thread(worker.journal.releases)
    file_ids = [UUID(file_id) for entry in entries for file_id in entry.staged]
    lost = await claims.stored(worker.element_id, await _held(worker, file_ids))
    if lost:
        log.warning(
            "withdrawing uploads another element took over while this one was down",
            extra={"file_ids": [str(i) for i in lost]},
        )
        copies = [e for e in map(worker.catalogue.get, lost) if e is not None]
        await asyncio.to_thread(withdraw, worker, [(e.file_id, e.storage_path) for e in copies])
    return lost


async def _held(worker: ElementWorker, file_ids: Sequence[UUID]) -> list[StoredUpload]:
    """The uploads among ``file_ids`` that are durable on this element."""
    held: list[StoredUpload] = []
    for file_id in file_ids:
        sidecar = await worker.read_sidecar(file_id)
        if sidecar is not None:
            held.append(StoredUpload(file_id, sidecar.checksum, sidecar.to_record()))
    return held


def withdraw(worker: ElementWorker, files: Sequence[tuple[UUID, str]]) -> None:
    """Remove this element's copies of ``files`` (file id, data path) through the journal: a
    crash midway is finished by recovery on the next start. No tombstone, so a redelivered
    upload is not refused as deleted here."""
    if not files:
        return
    entry = new_entry([JournalOp("delete", str(file_id), path) for file_id, path in files])
    worker.journal.begin(entry)
    recover_entry(worker.journal, entry)
    for file_id, _ in files:
        worker.catalogue.remove(file_id)
