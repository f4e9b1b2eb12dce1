"""The element's write-ahead journal (``.artstore/journal/``) and crash recovery.

An entry is written (atomically) before any file of a change is touched and removed once every
file of the change is durable. An entry that names claim checks (the staged bytes of its
uploads) moves to ``.artstore/releases/`` instead, until those bytes are removed: a crash between
acknowledging the uploads and removing their staged bytes leaves the release record behind,
and the worker finishes the removal at its next start. So does an entry whose facts no command
would announce again if they were lost (TTL expiry): its record stays until they are published,
and a start after a crash publishes them from the record's tombstones.

On start, each journal entry left behind is an interrupted change: creates without a sidecar are
rolled back, creates with one are complete (the sidecar is written last), deletes are
completed, and temporary files beside any of them are removed. A move to the cold tier
(``archive``) is complete once the file's sidecar records its verified cold copy: the online copy
is removed; before that the online copy is the file, and whatever reached the cold tier is
removed (see :mod:`~storage_workers.cold_move`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from storage_workers.backends import ObjectMissing, StorageBackend, is_temporary
from storage_workers.element import JOURNAL_DIR, RELEASES_DIR, TOMBSTONES_DIR
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import COLD_COPY

log = logging.getLogger(__name__)

OpKind = Literal["create", "update", "delete", "archive"]


@dataclass(frozen=True, slots=True)
class JournalOp:
    """One file touched by a change."""

    kind: OpKind
    file_id: str
    data_path: str

    @property
    def sidecar_path(self) -> str:
        """The sidecar beside the data file."""
        return sidecar_path(self.data_path)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An intent: the files a change is about to touch."""

    txid: str
    ops: tuple[JournalOp, ...]
    began_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    tombstones: dict[str, str] = field(default_factory=dict)
    """file_id -> the tombstone (FileDeleted fact, JSON) a delete leaves behind."""
    staged: dict[str, str] = field(default_factory=dict)
    """file_id -> the claim check (staged object, JSON) a create reads its bytes from."""
    unannounced: bool = False
    """No command would be redelivered to announce this change again (a TTL expiry): its
    record is kept, durably, until its facts are published."""

    @property
    def key(self) -> str:
        """Where the entry is stored."""
        return f"{JOURNAL_DIR}{self.txid}.json"

    @property
    def release_key(self) -> str:
        """Where the entry waits while its staged bytes are removed."""
        return f"{RELEASES_DIR}{self.txid}.json"

    def encode(self) -> bytes:
        """JSON form of the entry."""
        return json.dumps(
            {
                "txid": self.txid,
                "began_at": self.began_at,
                "ops": [
                    {"kind": op.kind, "file_id": op.file_id, "data_path": op.data_path}
                    for op in self.ops
                ],
                "tombstones": self.tombstones,
                "staged": self.staged,
                "unannounced": self.unannounced,
            }
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> JournalEntry:
        """Parse a stored entry."""
        doc = json.loads(raw)
        return cls(
            txid=doc["txid"],
            began_at=doc["began_at"],
            ops=tuple(JournalOp(o["kind"], o["file_id"], o["data_path"]) for o in doc["ops"]),
            tombstones=dict(doc.get("tombstones", {})),
            staged=dict(doc.get("staged", {})),
            unannounced=bool(doc.get("unannounced", False)),
        )


def new_entry(
    ops: list[JournalOp],
    tombstones: dict[str, str] | None = None,
    staged: dict[str, str] | None = None,
    *,
    unannounced: bool = False,
) -> JournalEntry:
    """A fresh intent for ``ops``."""
    return JournalEntry(
        txid=uuid.uuid4().hex,
        ops=tuple(ops),
        tombstones=tombstones or {},
        staged=staged or {},
        unannounced=unannounced,
    )


def tombstone_key(file_id: str) -> str:
    """Where a deleted file's tombstone lives."""
    return f"{TOMBSTONES_DIR}{file_id}.json"


class ColdTierMissing(Exception):
    """A move to the cold tier was interrupted, and the worker has no cold tier to finish it."""


class Journal:
    """Intents and commits over the element's backend (and its cold tier, if it has one)."""

    def __init__(self, backend: StorageBackend, cold: StorageBackend | None = None) -> None:
        self.backend = backend
        self.cold = cold

    def begin(self, entry: JournalEntry) -> None:
        """Durably record the intent before touching any file."""
        self.backend.write_atomic(entry.key, entry.encode())
        self.backend.sync_dirs([entry.key])

    def commit(self, entry: JournalEntry) -> None:
        """Forget the intent: every file of the change is durable.

        An entry with claim checks, or with facts only it can announce again, becomes a
        release record first (see :meth:`released`). For claim checks neither step need be
        synced: if one is lost, recovery finds a finished change and replaying it changes
        nothing, or staged bytes stay behind. An unannounced record is synced before the intent
        goes, since losing it would lose the facts.
        """
        if entry.staged or entry.unannounced:
            self.backend.write_atomic(entry.release_key, entry.encode())
        if entry.unannounced:
            self.backend.sync_dirs([entry.release_key])
        self.backend.delete(entry.key)

    def released(self, entry: JournalEntry) -> None:
        """The entry's staged bytes are gone and its facts published: forget its record."""
        self.backend.delete(entry.release_key)

    def releases(self) -> list[JournalEntry]:
        """Release records whose staged bytes may still be there (left by a crash)."""
        return self._entries(RELEASES_DIR)

    def pending(self) -> list[JournalEntry]:
        """Entries left by a crash."""
        return self._entries(JOURNAL_DIR)

    def _entries(self, directory: str) -> list[JournalEntry]:
        entries = []
        for info in self.backend.list(directory.rstrip("/")):
            if info.key.endswith(".json") and not is_temporary(info.key):
                entries.append(JournalEntry.decode(self.backend.read_bytes(info.key)))
        return entries


@dataclass
class RecoveryReport:
    """What recovery repaired."""

    entries: int = 0
    rolled_back: list[str] = field(default_factory=list)
    completed_creates: list[str] = field(default_factory=list)
    completed_deletes: list[str] = field(default_factory=list)
    completed_archives: list[str] = field(default_factory=list)
    """Moves to the cold tier whose sidecar had recorded the cold copy: online copy removed."""
    rolled_back_archives: list[str] = field(default_factory=list)
    """Moves interrupted before that: the cold copy (if any) removed, the online one kept."""
    temporaries_removed: list[str] = field(default_factory=list)


def recover(journal: Journal) -> RecoveryReport:
    """Repair every interrupted change, then remove the journal entries."""
    report = RecoveryReport()
    for entry in journal.pending():
        recover_entry(journal, entry, report)
    return report


def recover_entry(
    journal: Journal, entry: JournalEntry, report: RecoveryReport | None = None
) -> RecoveryReport:
    """Finish or roll back one change, remove its temporaries and its journal entry."""
    backend = journal.backend
    report = report if report is not None else RecoveryReport()
    report.entries += 1
    touched: set[str] = set()
    for op in entry.ops:
        touched.add(op.data_path)
        if op.kind == "create":
            if backend.stat(op.sidecar_path) is not None:
                report.completed_creates.append(op.file_id)
            else:
                backend.delete(op.data_path)
                report.rolled_back.append(op.file_id)
        elif op.kind == "delete":
            tombstone = entry.tombstones.get(op.file_id)
            if tombstone is not None:
                backend.write_atomic(tombstone_key(op.file_id), tombstone.encode())
            backend.delete(op.data_path)
            backend.delete(op.sidecar_path)
            report.completed_deletes.append(op.file_id)
        elif op.kind == "archive":
            _recover_archive(journal, op, report)
    for key in _temporaries_beside(backend, touched | {entry.key}):
        backend.delete(key)
        report.temporaries_removed.append(key)
    if journal.cold is not None and any(op.kind == "archive" for op in entry.ops):
        cold_paths = {op.data_path for op in entry.ops if op.kind == "archive"}
        for key in _temporaries_beside(journal.cold, cold_paths):
            journal.cold.delete(key)
            report.temporaries_removed.append(f"cold:{key}")
        journal.cold.sync_dirs(cold_paths)
    backend.sync_dirs(touched | {tombstone_key("-")})
    journal.commit(entry)
    return report


def _recover_archive(journal: Journal, op: JournalOp, report: RecoveryReport) -> None:
    """Finish or undo one file's move to the cold tier.

    The sidecar decides: it records the cold copy only after that copy was read back and
    matched the checksum, so with the record the cold copy is the file and the online copy
    goes; without it the online copy is the file and a cold copy (complete or not, verified or
    not) goes. Either way the content ends in exactly one place, never only in an unverified one.
    """
    backend, cold = journal.backend, journal.cold
    if cold is None:
        raise ColdTierMissing(
            f"a move of {op.data_path} to the cold tier was interrupted, and this worker has no "
            "cold tier configured (ARTSTORE_STORAGE_COLD_BACKEND): start it with the same "
            "cold tier to finish the move"
        )
    try:
        recorded = COLD_COPY in json.loads(backend.read_bytes(op.sidecar_path))
    except ObjectMissing:
        recorded = False
    if recorded:
        backend.delete(op.data_path)
        report.completed_archives.append(op.file_id)
    else:
        cold.delete(op.data_path)
        report.rolled_back_archives.append(op.file_id)
    log.warning(
        "finished an interrupted move to the cold tier"
        if recorded
        else "undid an interrupted move to the cold tier",
        extra={"file_id": op.file_id, "path": op.data_path},
    )


def _temporaries_beside(backend: StorageBackend, keys: set[str]) -> list[str]:
    found: list[str] = []
    for directory in {key.rsplit("/", 1)[0] for key in keys if "/" in key}:
        found.extend(
            info.key
            for info in backend.list(directory)
            if is_temporary(info.key) and info.key.rsplit("/", 1)[0] == directory
        )
    return found
