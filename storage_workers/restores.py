"""Restore on request, the ar element's part: a verified copy of an archived file handed to the
restore element's worker.

One writer per element: this worker never writes into the restore element. It reads the
content from wherever the sidecar says it is (the cold tier, or online while the element is
still archiving), streams it into the staging area under its own namespace
(:data:`RESTORE_NAMESPACE`) hashing it on the way, and announces the hand-over
(``RestoreStaged`` on ``artstore.restores``) to the restore element's worker, which keeps the
copy (:mod:`storage_workers.restored_copies`). The command is acknowledged only after the
hand-over is announced: a crash before it redoes the copy into the same staged name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING

from events import (
    Outgoing,
    RestoreFailed,
    RestoreFailureReason,
    RestoreRequested,
    RestoreStaged,
    RestoreStarted,
)
from storage_workers.admission import Admitted
from storage_workers.backends import ObjectMissing, WrittenObject
from storage_workers.claim_checks import ConfinedClaim
from storage_workers.restore_rules import RefuseRestore, Restore, decide_restore

if TYPE_CHECKING:
    from storage_workers.worker import Announce, ElementWorker

log = logging.getLogger(__name__)

RESTORE_NAMESPACE = "artstore-restores"
"""The staging namespace of restored copies in transit (no client id can be this)."""


async def process_restore_request(
    worker: ElementWorker, admitted: Admitted, *, announce: Announce
) -> None:
    """Decide, then copy out and hand over (or announce why not). The caller holds the lock."""
    command: RestoreRequested = admitted.command
    # The verified caller, not what the command claims, is who asked.
    command = command.model_copy(update={"requested_by": admitted.caller.client_id})
    corr = admitted.event.envelope.correlation_id
    entry = worker.catalogue.get(command.file_id)
    sidecar = await worker.read_sidecar(command.file_id) if entry is not None else None
    decision = decide_restore(
        command,
        element_id=worker.element_id,
        mode=worker.state.mode,
        entry=entry,
        uploaded_by=sidecar.created_by_id if sidecar is not None else None,
        caller=admitted.caller,
        restore_element_id=worker.restore_element_id,
    )
    if isinstance(decision, RefuseRestore):
        await announce([failed(worker, command, decision.reason, decision.detail, corr)], [])
        return
    assert sidecar is not None
    await announce(
        [
            worker.fact(
                RestoreStarted(
                    restore_id=command.restore_id,
                    file_id=command.file_id,
                    requested_by=command.requested_by,
                    element_id=worker.element_id,
                    started_at=worker.clock(),
                ),
                corr,
            )
        ],
        [],
    )
    outcome = await asyncio.to_thread(_copy_out, worker, command, decision)
    if isinstance(outcome, RefuseRestore):
        await announce([failed(worker, command, outcome.reason, outcome.detail, corr)], [])
        return
    claim, _written = outcome
    handover = RestoreStaged(
        restore_id=command.restore_id,
        file_id=command.file_id,
        requested_by=command.requested_by,
        element_id=worker.element_id,
        restore_element_id=decision.restore_element_id,
        staged=claim.staged,
        file_size=decision.entry.file_size,
        checksum=decision.entry.checksum,
        original_filename=sidecar.original_filename,
        content_type=sidecar.content_type,
        staged_at=worker.clock(),
    )
    await announce([worker.fact(handover, corr)], [])


def staged_name(command: RestoreRequested) -> str:
    """The name of a restore's copy in transit: the same for a redelivered command (a crash
    redoes the copy into it), another for anyone else's restore, even one whose command chose
    the same restore id (it never overwrites their copy before it is kept)."""
    asker = hashlib.sha256(f"{command.file_id}\n{command.requested_by}".encode()).hexdigest()
    return f"{command.restore_id}-{asker[:32]}"


def _copy_out(
    worker: ElementWorker, command: RestoreRequested, decision: Restore
) -> tuple[ConfinedClaim, WrittenObject] | RefuseRestore:
    entry = decision.entry
    source = worker.cold if entry.cold and worker.cold is not None else worker.backend
    where = "the cold tier" if source is worker.cold else "the element"
    try:
        chunks = source.read_range(entry.storage_path)
        claim, written = worker.staging.stage(RESTORE_NAMESPACE, staged_name(command), chunks)
    except ObjectMissing:
        return RefuseRestore(
            RestoreFailureReason.COLD_COPY_MISSING,
            f"the content of file {command.file_id} is missing from {where} "
            f"({entry.storage_path}); an operator should run a fixity check",
        )
    if (written.size, written.sha256) != (entry.file_size, entry.checksum):
        worker.staging.remove(claim)
        log.error(
            "a restored copy does not match its checksum",
            extra={"file_id": str(command.file_id), "path": entry.storage_path},
        )
        return RefuseRestore(
            RestoreFailureReason.CHECKSUM_MISMATCH,
            f"the copy of file {command.file_id} read from {where} has {written.size} bytes "
            f"hashing to {written.sha256}, not {entry.file_size} bytes hashing to "
            f"{entry.checksum}; nothing was restored",
        )
    return claim, written


def failed(
    worker: ElementWorker,
    command: RestoreRequested,
    reason: RestoreFailureReason,
    detail: str,
    corr: str | None,
) -> Outgoing:
    """A RestoreFailed fact for ``command``."""
    return worker.fact(
        RestoreFailed(
            restore_id=command.restore_id,
            file_id=command.file_id,
            requested_by=command.requested_by,
            element_id=worker.element_id,
            reason=reason,
            detail=detail[:2000],
            failed_at=worker.clock(),
        ),
        corr,
    )
