"""The upload claims' part in storing a batch (see :mod:`~storage_workers.claims`): the batch's
new files claimed before they are written, the claims told what became durable, and released
for what was not stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from events import FileStored, Outgoing
from storage_workers import settlement
from storage_workers.claims import ClaimsUnavailable, StoredUpload
from storage_workers.durability import Change, NewFile
from storage_workers.handlers import Owned, Reject, StoredElsewhere, TakeOver, decide_claim

if TYPE_CHECKING:
    from storage_workers.worker import ElementWorker

log = logging.getLogger("storage_workers.uploads")


class UploadBusyElsewhere(Exception):
    """A batch holds an upload that another live element is writing right now: the batch goes
    back to the topic and is tried again (see :mod:`~storage_workers.claims`)."""


async def claim_new_files(
    worker: ElementWorker, changes: list[Change]
) -> tuple[list[Change], list[Outgoing]]:
    """Claim the batch's new files; keep the ones this element may write, and the facts that
    answer the rest (stored elsewhere: re-announced; claimed with another checksum: rejected).
    Raises :class:`UploadBusyElsewhere` if another live element is writing one of them."""
    claims = worker.claims
    if claims is None or not changes:
        return changes, []
    checksums = {c.file_id: new_file(c).sidecar.checksum for c in changes}
    found = await claims.claim(worker.element_id, checksums)
    kept: list[Change] = []
    answers: list[Outgoing] = []
    busy: list[str] = []
    now = datetime.now(UTC)
    for change in changes:
        claim = found[change.file_id]
        corr = change.fact.envelope.correlation_id
        trace = change.fact.trace
        decision = decide_claim(
            me=worker.element_id,
            owner=claim.element_id,
            owner_checksum=claim.checksum,
            checksum=checksums[change.file_id],
            stored=claim.stored is not None,
            owner_live=worker.peer_alive(claim.element_id),
            claim_age_s=(now - claim.claimed_at).total_seconds(),
            lease_s=worker.limits.claim_lease_s,
            file_id=change.file_id,
        )
        if isinstance(decision, Owned):
            kept.append(change)
        elif isinstance(decision, StoredElsewhere):
            assert claim.stored is not None
            worker.metrics.stored_elsewhere.inc()
            answers.append(worker.fact(FileStored(file=claim.stored), corr, trace=trace))
        elif isinstance(decision, Reject):
            answers.append(
                worker.upload_rejected(
                    change.file_id,
                    decision.reason,
                    decision.detail,
                    corr,
                    new_file(change).sidecar.created_by_id,
                    trace=trace,
                )
            )
        elif isinstance(decision, TakeOver):
            log.warning(
                "taking over an unfinished upload claim",
                extra={"file_id": str(change.file_id), "previous": decision.previous_owner},
            )
            if await claims.take_over(worker.element_id, change.file_id, claim):
                kept.append(change)
            else:
                busy.append(f"file {change.file_id}: its claim changed hands meanwhile")
        else:
            busy.append(decision.detail)
    if busy:
        await claims.release(worker.element_id, [c.file_id for c in kept])
        raise UploadBusyElsewhere("; ".join(busy[:3]) + (" ..." if len(busy) > 3 else ""))
    return kept, answers


async def record_stored(
    worker: ElementWorker, changes: Sequence[Change], already: Sequence[StoredUpload]
) -> list[Change]:
    """Tell the claims what is durable here. Returns the changes withdrawn: uploads another
    element claimed meanwhile (this one outlived its claim's lease mid-write) are removed
    from this element, not announced, and their staged bytes left for their owner."""
    claims = worker.claims
    if claims is None:
        return []
    uploads = [
        StoredUpload(c.file_id, new_file(c).sidecar.checksum, new_file(c).sidecar.to_record())
        for c in changes
        if c.done
    ]
    lost = set(await claims.stored(worker.element_id, [*uploads, *already]))
    withdrawn = [c for c in changes if c.done and c.file_id in lost]
    if withdrawn:
        log.warning(
            "withdrawing uploads another element claimed while this one wrote them",
            extra={"file_ids": [str(c.file_id) for c in withdrawn]},
        )
        await asyncio.to_thread(
            settlement.withdraw, worker, [(c.file_id, c.data_path) for c in withdrawn]
        )
        for change in withdrawn:
            change.done = False  # neither catalogued nor its staged bytes removed
    return withdrawn


async def release_unstored(worker: ElementWorker, changes: Sequence[Change]) -> None:
    """Drop the claims of uploads this batch did not store (rejected, or rolled back)."""
    claims = worker.claims
    undone = [c.file_id for c in changes if not c.done]
    if claims is None or not undone:
        return
    try:
        await claims.release(worker.element_id, undone)
    except ClaimsUnavailable as exc:
        # Harmless: the next start (or the lease) frees them.
        log.warning("could not release upload claims", extra={"error": str(exc)})


def new_file(change: Change) -> NewFile:
    op = change.operation
    assert isinstance(op, NewFile)
    return op
