"""The one place that orders the side effects of moving content to the cold tier.

When an element moves ``ro -> ar`` its worker moves every data file to the element's cold
backend, a batch at a time, through :func:`move_to_cold`. Sidecars stay online and say where the
content is. Each step names the crash it guards against; ``crash_point`` lets the crash tests
stop the process (SIGKILL) right after any of them (``archive.<step>``).

The sidecar is the commit point: it records the cold copy only after that copy was made durable
and read back with the checksum the sidecar already held. Recovery (``journal.recover_entry``)
decides by it alone, so after a crash at any step the content is in exactly one place, and
never only in a copy nobody verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage_workers.backends import ObjectMissing, StorageBackend, WrittenObject
from storage_workers.crash import crash_point
from storage_workers.journal import Journal, JournalOp, new_entry, recover_entry
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import COLD_COPY, Sidecar


@dataclass
class ColdMove:
    """One file to move: its sidecar as it is online; after the move, the sidecar that says
    where the content went, or why it stayed online."""

    sidecar: Sidecar
    moved: Sidecar | None = None
    encoded: bytes | None = None
    """The new sidecar's bytes as written (the catalogue records their hash)."""
    failure: str | None = None
    written: WrittenObject | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.sidecar.storage_path


def move_to_cold(
    online: StorageBackend,
    cold: StorageBackend,
    journal: Journal,
    moves: Sequence[ColdMove],
    *,
    now: datetime,
) -> None:
    """Move the content of ``moves`` to ``cold``; each ends with ``moved`` or ``failure``.

    A file whose online copy is missing or does not match its checksum is not moved (its
    ``failure`` says why; the fixity auditor reports it). A backend error propagates after the
    batch was recovered: moves already recorded in their sidecars are finished, the rest undone.
    """
    entry = new_entry([JournalOp("archive", str(m.sidecar.file_id), m.path) for m in moves])
    # 1. Journal intent first: after a crash anywhere below, recovery knows which files were
    #    being moved and settles each by its sidecar.
    journal.begin(entry)
    crash_point("archive.journal-intent")
    try:
        # 2. Copy each file to the cold tier, hashed as it is written, into a temporary object
        #    where the tier can rename; a copy whose bytes are not the sidecar's is dropped. Then
        #    one durability barrier, and only then the names: a crash leaves temporaries (or, on
        #    S3, whole objects) that recovery removes, since no sidecar records them yet.
        for move in moves:
            _copy(online, cold, move)
        copied = [m for m in moves if m.written is not None]
        cold.make_durable([m.written for m in copied if m.written is not None])
        for move in copied:
            assert move.written is not None
            cold.publish_pending(move.written)
        cold.sync_dirs([m.path for m in copied])
        crash_point("archive.cold-written")
        # 3. Read every cold copy back, as a restore will read it, and compare with the
        #    checksum the sidecar holds: a copy the tier garbled or lost is removed and the file
        #    stays online. Nothing below happens to a file whose cold copy was not verified.
        for move in copied:
            _verify(cold, move)
        verified = [m for m in copied if m.failure is None]
        crash_point("archive.cold-verified")
        # 4. Rewrite the sidecars to record the verified cold copies (durable before their
        #    names, one barrier): from this rename on, the cold copy is the file. A crash before
        #    it undoes the move; after it, recovery finishes it.
        pending = []
        for move in verified:
            move.moved = move.sidecar.replace(
                **{
                    COLD_COPY: {
                        "key": move.path,
                        "sha256": move.sidecar.checksum,
                        "verified_at": now.isoformat(),
                    }
                }
            )
            move.encoded = move.moved.encode()
            pending.append(
                online.write_pending(sidecar_path(move.path), (move.encoded,), durable=False)
            )
        online.make_durable(pending)
        for written in pending:
            online.publish_pending(written)
        online.sync_dirs([m.path for m in verified])
        crash_point("archive.sidecar-written")
        # 5. Only now remove the online copies, and make the removals durable: the content is
        #    in one place again.
        for move in verified:
            online.delete(move.path)
        online.sync_dirs([m.path for m in verified])
        crash_point("archive.online-removed")
    except BaseException:
        recover_entry(journal, entry)
        raise
    # 6. Journal commit: every file of the batch is in exactly one place.
    journal.commit(entry)
    crash_point("archive.journal-committed")


def _copy(online: StorageBackend, cold: StorageBackend, move: ColdMove) -> None:
    expected = move.sidecar
    try:
        chunks = online.read_range(move.path)
        written = cold.write_pending(move.path, chunks, durable=False)
    except ObjectMissing:
        move.failure = f"{move.path} is missing online: nothing to move (run a fixity check)"
        return
    if (written.size, written.sha256) != (expected.file_size, expected.checksum):
        cold.discard_pending(written)
        move.failure = (
            f"the online copy of {move.path} has {written.size} bytes hashing to "
            f"{written.sha256}; its sidecar records {expected.file_size} bytes and "
            f"{expected.checksum}: left online (run a fixity check)"
        )
        return
    move.written = written


def _verify(cold: StorageBackend, move: ColdMove) -> None:
    try:
        digest = cold.digest(move.path)
    except ObjectMissing:
        digest = None
    expected = (move.sidecar.file_size, move.sidecar.checksum)
    if digest is None or (digest.size, digest.sha256) != expected:
        cold.delete(move.path)
        found = "nothing" if digest is None else f"{digest.size} bytes hashing to {digest.sha256}"
        move.failure = (
            f"the cold copy of {move.path} read back as {found}, not {expected[0]} bytes "
            f"hashing to {expected[1]}: removed, the file stays online"
        )
