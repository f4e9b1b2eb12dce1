"""The one place that orders the side effects of a change (SPEC §3 write order).

Every upload, metadata update and delete goes through :func:`commit_changes`, in batches. Each
step says which crash it guards against; ``crash_point`` lets the crash tests stop the process
(SIGKILL) right after any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Literal
from uuid import UUID

from events import Outgoing, RejectionReason
from storage_workers.backends import StorageBackend, WrittenObject
from storage_workers.claim_checks import InvalidClaimCheck
from storage_workers.crash import crash_point
from storage_workers.journal import (
    Journal,
    JournalEntry,
    JournalOp,
    RecoveryReport,
    new_entry,
    recover_entry,
    tombstone_key,
)
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import Sidecar
from storage_workers.staging import StagedObjectMissing, StagedObjectTooLarge

Rejecter = Callable[[RejectionReason, str], Outgoing]

# A batch writes its files on many threads: S3 PUTs wait on the network and large local copies
# on the disk, and both release the GIL while they wait. More than ~16 gains nothing on a small
# machine and costs GIL hand-offs.
_FILE_IO = ThreadPoolExecutor(max_workers=16, thread_name_prefix="element-io")


async def _io(func: Callable[..., object], *args: object) -> object:
    return await asyncio.get_running_loop().run_in_executor(_FILE_IO, partial(func, *args))


@dataclass(frozen=True)
class NewFile:
    """Store staged bytes as a new file with its sidecar."""

    sidecar: Sidecar
    encoded: bytes
    """The sidecar as written (encoded and validated once, when the upload was decided)."""
    open_source: Callable[[], Iterable[bytes]]
    rejected: Rejecter
    """Builds the rejection fact if the bytes turn out not to be what was declared."""
    claim_check: str
    """The confined claim check the bytes come from (JSON of a ``ConfinedClaim``: the staged
    object and its owner), removed once the upload is announced."""


@dataclass(frozen=True)
class SidecarRewrite:
    """Replace a file's sidecar (a metadata update)."""

    sidecar: Sidecar
    encoded: bytes


@dataclass(frozen=True)
class FileRemoval:
    """Remove a file and its sidecar, leaving a tombstone that can re-announce the deletion."""

    file_id: UUID
    data_path: str
    tombstone: str


Operation = NewFile | SidecarRewrite | FileRemoval
_KIND: dict[type, Literal["create", "update", "delete"]] = {
    NewFile: "create",
    SidecarRewrite: "update",
    FileRemoval: "delete",
}
_STEP_PREFIX = {"create": "upload", "update": "update", "delete": "delete"}


@dataclass
class Change:
    """An operation and the fact announcing it."""

    operation: Operation
    fact: Outgoing
    done: bool = False
    """True once durable; False when verification turned it into a rejection."""
    outcome: Outgoing | None = field(default=None)
    pending: list[WrittenObject] = field(default_factory=list, repr=False)
    """Invisible objects (data, then sidecar) waiting to be published; durable once step 2's
    barrier has run."""

    @property
    def file_id(self) -> UUID:
        op = self.operation
        return op.file_id if isinstance(op, FileRemoval) else op.sidecar.file_id

    @property
    def data_path(self) -> str:
        op = self.operation
        return op.data_path if isinstance(op, FileRemoval) else op.sidecar.storage_path


async def commit_changes(
    backend: StorageBackend,
    journal: Journal,
    changes: Sequence[Change],
    *,
    announce: Callable[[list[Outgoing]], Awaitable[None]],
    acknowledge: Callable[[], Awaitable[None]],
    release: Callable[[JournalEntry, Sequence[Change]], Awaitable[None]] | None = None,
    redeliverable: bool = True,
) -> None:
    """Make ``changes`` durable, announce them, then acknowledge the commands that asked.

    ``redeliverable=False`` is for changes no command asked for (TTL expiry): nothing would
    announce them again after a crash, so the journal keeps their record until ``release``
    has run after the announcement.

    This is the one function that orders the side effects (SPEC §3). Each step names the crash
    it guards against; every step is one barrier for the whole batch, so a batch of N files
    pays for its fsyncs in parallel and for one fsync per directory, not N of each.

    On return each change has ``done`` and its ``outcome`` (the fact that was announced).
    A backend error propagates after the change set was rolled back; nothing is announced
    or acknowledged, so the caller may retry the same commands. Changes that recovery found
    complete (a create whose sidecar had landed) are kept and have ``done`` set.
    """
    kinds = {_STEP_PREFIX[_KIND[type(c.operation)]] for c in changes}

    def crash(step: str) -> None:
        for kind in sorted(kinds):
            crash_point(f"{kind}.{step}")

    entry = new_entry(
        [JournalOp(_KIND[type(c.operation)], str(c.file_id), c.data_path) for c in changes],
        {
            str(c.file_id): c.operation.tombstone
            for c in changes
            if isinstance(c.operation, FileRemoval)
        },
        {
            str(c.file_id): c.operation.claim_check
            for c in changes
            if isinstance(c.operation, NewFile) and release is not None
        },
        unannounced=not redeliverable,
    )
    # 1. Journal intent first: after a crash anywhere below, recovery knows which files were in
    #    flight and can remove half-written data or finish a half-done delete.
    await _io(journal.begin, entry)
    crash("journal-intent")
    try:
        # 2. Data into a temp object beside its target, fsync'd, checked against the declared
        #    size and sha256 *before* it gets its name: a crash or a lie leaves only a temp
        #    file, never a wrong file under a real name. Only then its sidecar, into a temp
        #    object of its own (still invisible where the storage can rename; on S3, where
        #    it cannot, the sidecar PUT follows the verified data PUT, which is the order that
        #    matters there). Deletes remove the data first, so a crash never leaves data without
        #    a sidecar. All files of the batch are written in parallel, then made durable by one
        #    barrier for all of them (on a disk: one flush, not one fsync per file), still
        #    before any of them gets its name.
        # Every write finishes (or fails) before anything else happens: rolling back while
        # another thread is still writing would miss what it writes afterwards.
        results = await asyncio.gather(
            *(_io(_write_pending, backend, c) for c in changes), return_exceptions=True
        )
        if failure := next((r for r in results if isinstance(r, BaseException)), None):
            raise failure
        written = [w for c in changes for w in c.pending]
        if written:
            await _io(backend.make_durable, written)
        crash("data-written")
        # 3. Rename the data files: each appears whole or not at all.
        await _io(_publish_data, backend, changes)
        crash("data-renamed")
        # 4. Rename the sidecars, after every data file of the batch: a sidecar's presence is
        #    what makes a file exist, so a crash before this rolls the upload back, and a
        #    sidecar is never visible before its data.
        await _io(_publish_sidecars, backend, changes)
        crash("sidecar-written")
        # 5. fsync each touched directory once: without it a power cut can forget the renames
        #    even though the contents were synced. The journal commit below waits for it.
        await _io(backend.sync_dirs, _touched_dirs(changes))
        crash("dir-synced")
    except BaseException:
        report = await _io(recover_entry, journal, entry)
        assert isinstance(report, RecoveryReport)
        _mark_survivors(changes, report)
        raise
    # 6. Journal commit: the change is complete on storage; recovery has nothing to do. Its
    #    claim checks stay on record until step 9 has removed the staged bytes.
    await _io(journal.commit, entry)
    crash("journal-committed")
    # 7. Announce: the facts go out only for durable changes (and rejections for the rest). A
    #    crash before this leaves the command uncommitted; its redelivery finds the work done
    #    and re-announces the same fact.
    await announce([c.outcome for c in changes if c.outcome is not None])
    crash("published")
    # 8. Commit the offsets last: a command is acknowledged only once its effect is durable and
    #    announced, so no crash can lose an accepted command.
    await acknowledge()
    crash("acknowledged")
    # 9. Only now may the claim-check bytes go: before this, a redelivery might still need them.
    #    A crash before they are gone leaves the release record; the next start finishes it.
    if release is not None:
        await release(entry, [c for c in changes if c.done])


def _mark_survivors(changes: Sequence[Change], report: RecoveryReport) -> None:
    """After a rollback, ``done`` says which changes recovery found complete on storage.

    A create whose sidecar had landed, or a delete that was under way, is kept (and finished);
    everything else is undone. The caller must count the survivors as stored or deleted:
    otherwise retrying the same commands would store a file a second time.
    """
    survivors = {*report.completed_creates, *report.completed_deletes}
    for change in changes:
        kept = isinstance(change.operation, NewFile | FileRemoval)
        change.done = kept and str(change.file_id) in survivors


def _touched_dirs(changes: Sequence[Change]) -> list[str]:
    keys = [c.data_path for c in changes]
    if any(isinstance(c.operation, FileRemoval) for c in changes):
        keys.append(tombstone_key("-"))
    return keys


def _write_pending(backend: StorageBackend, change: Change) -> None:
    op = change.operation
    if isinstance(op, FileRemoval):
        backend.delete(op.data_path)
        change.done, change.outcome = True, change.fact
        return
    if isinstance(op, SidecarRewrite):
        key = sidecar_path(op.sidecar.storage_path)
        change.pending = [backend.write_pending(key, (op.encoded,), durable=False)]
        change.done, change.outcome = True, change.fact
        return
    data = _write_data(backend, change, op)
    if data is not None:
        try:
            sidecar = backend.write_pending(
                sidecar_path(op.sidecar.storage_path), (op.encoded,), durable=False
            )
        except BaseException:
            backend.discard_pending(data)
            raise
        change.pending = [data, sidecar]


def _write_data(backend: StorageBackend, change: Change, op: NewFile) -> WrittenObject | None:
    expected = op.sidecar
    try:
        pending = backend.write_pending(expected.storage_path, op.open_source(), durable=False)
    except StagedObjectMissing as exc:
        change.outcome = op.rejected(RejectionReason.STAGED_OBJECT_MISSING, str(exc))
        return None
    except InvalidClaimCheck as exc:  # a link or not a regular file, found when opened
        change.outcome = op.rejected(RejectionReason.INVALID_CLAIM_CHECK, str(exc))
        return None
    except StagedObjectTooLarge as exc:  # the temp object is gone with the write that failed
        change.outcome = op.rejected(RejectionReason.SIZE_MISMATCH, str(exc))
        return None
    if pending.size != expected.file_size:
        backend.discard_pending(pending)
        change.outcome = op.rejected(
            RejectionReason.SIZE_MISMATCH,
            f"staged object has {pending.size} bytes, the command declared {expected.file_size}",
        )
        return None
    if pending.sha256 != expected.checksum:
        backend.discard_pending(pending)
        change.outcome = op.rejected(
            RejectionReason.CHECKSUM_MISMATCH,
            f"staged bytes hash to sha256 {pending.sha256}, the command declared "
            f"{expected.checksum}",
        )
        return None
    change.done, change.outcome = True, change.fact
    return pending


def _publish_data(backend: StorageBackend, changes: Sequence[Change]) -> None:
    for change in changes:
        if isinstance(change.operation, NewFile) and change.pending:
            backend.publish_pending(change.pending[0])


def _publish_sidecars(backend: StorageBackend, changes: Sequence[Change]) -> None:
    for change in changes:
        op = change.operation
        if isinstance(op, FileRemoval):
            backend.write_atomic(tombstone_key(str(op.file_id)), op.tombstone.encode())
            backend.delete(sidecar_path(op.data_path))
        elif change.pending:
            backend.publish_pending(change.pending[-1])
