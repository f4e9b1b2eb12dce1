"""Restore on request, the restore element's part: keep a verified copy for a while, warn
before it goes, remove it at its expiry.

A restored copy is not one of the element's files (its file id belongs to the ar element, and
a rebuild must not announce it as stored here): it lives in ``.artstore/restored/`` as
``<restore_id>`` (the bytes) and ``<restore_id>.json`` (its record: file, requester, checksum,
expiry, whether the warning went out). The bytes come from the hand-over the ar element's
worker staged; this worker, the element's one writer, is the only one that writes them here.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from events import (
    EventDecodeError,
    Failure,
    FileRestored,
    Outgoing,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreFailureReason,
    RestoreStaged,
    Topic,
    decode_record,
)
from storage_workers.backends import ObjectMissing, is_temporary
from storage_workers.claim_checks import ConfinedClaim, InvalidClaimCheck
from storage_workers.crash import crash_point
from storage_workers.restores import RESTORE_NAMESPACE
from storage_workers.staging import StagedObjectMissing

if TYPE_CHECKING:
    from storage_workers.worker import Acknowledge, Announce, ElementWorker, Record

log = logging.getLogger(__name__)

RESTORED_DIR = ".artstore/restored/"


def data_key(restore_id: UUID) -> str:
    """Where a restored copy's bytes are kept in the restore element."""
    return f"{RESTORED_DIR}{restore_id}"


def record_key(restore_id: UUID) -> str:
    """Where a restored copy's record is kept."""
    return f"{RESTORED_DIR}{restore_id}.json"


class RestoredCopy(BaseModel):
    """The record of one restored copy."""

    model_config = ConfigDict(frozen=True)

    restore_id: UUID
    file_id: UUID
    requested_by: str
    element_id: str
    checksum: str
    file_size: int
    original_filename: str
    content_type: str
    restored_at: AwareDatetime
    expires_at: AwareDatetime
    warned_at: AwareDatetime | None = None

    def restored(self, restore_element_id: str) -> FileRestored:
        """The fact announcing the copy."""
        return FileRestored(
            restore_id=self.restore_id,
            file_id=self.file_id,
            requested_by=self.requested_by,
            element_id=self.element_id,
            restore_element_id=restore_element_id,
            storage_path=data_key(self.restore_id),
            checksum=self.checksum,
            restored_at=self.restored_at,
            expires_at=self.expires_at,
        )


async def process_restore_staged(
    worker: ElementWorker,
    record: Record,
    *,
    announce: Announce,
    acknowledge: Acknowledge,
    keep_for: timedelta,
) -> None:
    """Keep the copy a hand-over names (when it is for this element), announce FileRestored,
    acknowledge, then remove the staged bytes."""
    try:
        event = decode_record(
            record, max_bytes=worker.limits.max_message_bytes, topic=Topic.RESTORES
        )
    except EventDecodeError as exc:
        # It can never be read: dead-lettered with why, and the hand-overs after it go on.
        log.error("an unreadable hand-over is dead-lettered", extra={"error": str(exc)})
        await announce([], [worker.dead_letter(record, Failure.of(exc.reason.value, exc.detail))])
        await acknowledge([record])
        return
    staged = event.data
    if not isinstance(staged, RestoreStaged) or staged.restore_element_id != worker.element_id:
        await acknowledge([record])
        return
    corr = event.envelope.correlation_id
    async with worker.lock:
        try:
            claim = worker.staging.confine(staged.staged, RESTORE_NAMESPACE)
        except InvalidClaimCheck as exc:
            await announce([_failed(worker, staged, str(exc), corr)], [])
            await acknowledge([record])
            return
        existing = await asyncio.to_thread(_read_record, worker, staged.restore_id)
        if existing is None:
            capacity = worker.capacity()
            if not capacity.fits(staged.file_size):
                room = max(0, capacity.free_bytes - capacity.full_floor)
                detail = f"it is full: {room} bytes left, the copy has {staged.file_size}"
                await announce([_failed(worker, staged, detail, corr)], [])
                await acknowledge([record])
                await asyncio.to_thread(worker.staging.remove, claim)
                return
            outcome = await asyncio.to_thread(_keep, worker, staged, claim, keep_for)
            if isinstance(outcome, str):
                await announce([_failed(worker, staged, outcome, corr)], [])
                await acknowledge([record])
                return
            existing = outcome
            worker.restored_bytes += outcome.file_size
        elif (existing.file_id, existing.requested_by, existing.checksum) != (
            staged.file_id,
            staged.requested_by,
            staged.checksum,
        ):
            # The restore id was chosen by a command (RestoreRequested names its own): the
            # copy kept under it is another's, and stays theirs.
            detail = f"restore id {staged.restore_id} is already taken by another restore"
            await announce([_failed(worker, staged, detail, corr)], [])
            await acknowledge([record])
            await asyncio.to_thread(worker.staging.remove, claim)
            return
        # Announced again for a redelivered hand-over: FileRestored is idempotent.
        await announce([worker.fact(existing.restored(worker.element_id), corr)], [])
        crash_point("restore.published")
        await acknowledge([record])
    await asyncio.to_thread(worker.staging.remove, claim)


def _keep(
    worker: ElementWorker, staged: RestoreStaged, claim: ConfinedClaim, keep_for: timedelta
) -> RestoredCopy | str:
    """The bytes (verified, durable, then named), then their record; or why not."""
    backend = worker.backend
    key = data_key(staged.restore_id)
    try:
        written = backend.write_pending(key, worker.staging.open(claim))
    except (StagedObjectMissing, InvalidClaimCheck) as exc:
        return f"the staged copy is gone: {exc}"
    if (written.size, written.sha256) != (staged.file_size, staged.checksum):
        backend.discard_pending(written)
        return (
            f"the staged copy of file {staged.file_id} has {written.size} bytes hashing to "
            f"{written.sha256}, not {staged.file_size} bytes hashing to {staged.checksum}"
        )
    backend.publish_pending(written)
    crash_point("restore.data-written")
    now = worker.clock()
    copy = RestoredCopy(
        restore_id=staged.restore_id,
        file_id=staged.file_id,
        requested_by=staged.requested_by,
        element_id=staged.element_id,
        checksum=staged.checksum,
        file_size=staged.file_size,
        original_filename=staged.original_filename,
        content_type=staged.content_type,
        restored_at=now,
        expires_at=now + keep_for,
    )
    # The record last: a copy without a record is redone by the redelivered hand-over.
    backend.write_atomic(record_key(staged.restore_id), copy.model_dump_json().encode())
    backend.sync_dirs([key])
    return copy


def _read_record(worker: ElementWorker, restore_id: UUID) -> RestoredCopy | None:
    try:
        raw = worker.backend.read_bytes(record_key(restore_id))
    except ObjectMissing:
        return None
    return RestoredCopy.model_validate_json(raw)


def restored_copies(worker: ElementWorker) -> list[RestoredCopy]:
    """Every restored copy the element keeps. A record that cannot be read is logged and left
    for the operator: it stops neither the element's start nor the sweep of the others."""
    found = []
    for info in worker.backend.list(RESTORED_DIR.rstrip("/")):
        if info.key.endswith(".json") and not is_temporary(info.key):
            try:
                found.append(RestoredCopy.model_validate_json(worker.backend.read_bytes(info.key)))
            except ValidationError as exc:
                log.error(
                    "a restored copy's record cannot be read; it is left as it is",
                    extra={"key": info.key, "error": str(exc)[:500]},
                )
    return found


def kept_bytes(worker: ElementWorker) -> int:
    """What the restored copies the element keeps take of its room, expired ones too (their
    bytes are there until the sweep removes them)."""
    return sum(copy.file_size for copy in restored_copies(worker))


async def sweep_restored(
    worker: ElementWorker, *, announce: Announce, warn_before: timedelta
) -> int:
    """Warn of copies about to expire, remove expired ones, and count what the rest take of
    the element's capacity. Each fact is announced before the record says it was: a crash in
    between announces it again (idempotent), never not at all. Returns how many facts went
    out."""
    sent = 0
    async with worker.lock:
        now = worker.clock()
        kept = 0
        for copy in await asyncio.to_thread(restored_copies, worker):
            if copy.expires_at <= now:
                await announce([worker.fact(_expired(worker, copy, now))], [])
                await asyncio.to_thread(_remove, worker, copy.restore_id)
                sent += 1
                continue
            kept += copy.file_size
            if copy.warned_at is None and copy.expires_at - warn_before <= now:
                await announce([worker.fact(_expiring(worker, copy, now))], [])
                warned = copy.model_copy(update={"warned_at": now})
                await asyncio.to_thread(
                    worker.backend.write_atomic,
                    record_key(copy.restore_id),
                    warned.model_dump_json().encode(),
                )
                sent += 1
        worker.restored_bytes = kept  # counted again: a copy kept before a restart counts too
    return sent


def _remove(worker: ElementWorker, restore_id: UUID) -> None:
    worker.backend.delete(data_key(restore_id))
    worker.backend.delete(record_key(restore_id))
    worker.backend.sync_dirs([data_key(restore_id)])


def _expired(worker: ElementWorker, copy: RestoredCopy, now: datetime) -> RestoreExpired:
    return RestoreExpired(
        restore_id=copy.restore_id,
        file_id=copy.file_id,
        requested_by=copy.requested_by,
        element_id=copy.element_id,
        restore_element_id=worker.element_id,
        expired_at=now,
    )


def _expiring(worker: ElementWorker, copy: RestoredCopy, now: datetime) -> RestoreExpiring:
    return RestoreExpiring(
        restore_id=copy.restore_id,
        file_id=copy.file_id,
        requested_by=copy.requested_by,
        element_id=copy.element_id,
        restore_element_id=worker.element_id,
        expires_at=copy.expires_at,
        warned_at=now,
    )


def _failed(
    worker: ElementWorker, staged: RestoreStaged, detail: str, corr: str | None
) -> Outgoing:
    return worker.fact(
        RestoreFailed(
            restore_id=staged.restore_id,
            file_id=staged.file_id,
            requested_by=staged.requested_by,
            element_id=staged.element_id,
            reason=RestoreFailureReason.RESTORE_ELEMENT_UNAVAILABLE,
            detail=f"restore element {worker.element_id} could not keep the copy: {detail}"[:2000],
            failed_at=worker.clock(),
        ),
        corr,
    )
