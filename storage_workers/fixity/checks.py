"""What one fixity check of one stored file (or stray object) finds. Synchronous; no broker.

The auditor reads through the element's backend, so a local and an S3 element are checked the
same way. Two rules keep it from crying wolf:

- a storage error (timeout, refused connection, a read cut short) is never a finding: the read
  is tried again (``read_attempts``), and if the storage still fails the file is *unreadable*;
- a mismatch is read again ``confirmations`` times; it is declared only if every read gives
  a wrong answer. The catalogue entry is looked up again before each re-read, so a file the
  worker changed or deleted meanwhile is checked against its new state, or dropped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from uuid import UUID

from events import FixityFindingKind, FixityOutcome
from storage_workers.backends import (
    InvalidKey,
    LocalStorage,
    ObjectDigest,
    ObjectInfo,
    ObjectMissing,
    StorageBackend,
)
from storage_workers.catalogue import CatalogueEntry
from storage_workers.fixity.budget import ReadBudget
from storage_workers.fixity.items import (
    AuditItem,
    AuditPolicy,
    Expected,
    Finding,
    KnownFile,
    UnknownObject,
    Verdict,
    plan_items,
    sort_key,
    sound_verdict,
)
from storage_workers.naming import file_id_of, is_sidecar, sidecar_path
from storage_workers.sidecar import MAX_SIDECAR_BYTES, Sidecar, SidecarError, decode_sidecar

log = logging.getLogger(__name__)

WHOLE_READ = 1024 * 1024
"""Size up to which a local file is proved sound with one read into memory (larger ones are
hashed as they stream)."""

Lookup = Callable[[UUID], CatalogueEntry | None]
"""The element's current catalogue entry of a file (None: the element no longer holds it)."""


class Unreadable(Exception):
    """The storage kept failing; nothing is known about the bytes."""


class Auditor:
    """Checks items of one element through its backend."""

    def __init__(
        self,
        backend: StorageBackend,
        element_id: str,
        lookup: Lookup,
        *,
        policy: AuditPolicy | None = None,
        budget: ReadBudget | None = None,
        content_online: bool = True,
    ) -> None:
        self.backend = backend
        self.element_id = element_id
        self.lookup = lookup
        self.policy = policy or AuditPolicy()
        self.budget = budget or ReadBudget(None)
        self.content_online = content_online

    def check_all(self, items: Sequence[AuditItem]) -> list[Verdict]:
        """Check ``items`` in order: a known file is read once, and is sound when its sidecar
        and its data are the very bytes the catalogue records; anything else (a difference, a
        missing object, a storage error, an unknown object) gets the full :meth:`check`."""
        return [self._sound(item) or self.check(item) for item in items]

    def expected(self, item: AuditItem) -> tuple[CatalogueEntry, Expected] | None:
        """The current entry of a known file and what a sound copy of it is, when one read
        can prove it sound (its content is online and its sidecar's sha256 is recorded); None
        otherwise (the item needs the full :meth:`check`)."""
        if not (self.content_online and isinstance(item, KnownFile)):
            return None
        entry = self.lookup(item.entry.file_id)
        if entry is None or entry.sidecar_sha256 is None or entry.cold:
            return None
        return entry, (entry.storage_path, entry.file_size, entry.checksum, entry.sidecar_sha256)

    def _sound(self, item: AuditItem) -> Verdict | None:
        if (found := self.expected(item)) is None:
            return None
        entry, expected = found
        if not proves_sound(self.backend, expected, self.budget):
            return None  # the full check retries, and tells a missing object from a failure
        return sound_verdict(entry)

    def check(self, item: AuditItem) -> Verdict:
        """Check one item; never raises for what the storage does."""
        try:
            if isinstance(item, KnownFile):
                return self._check_known(item.entry)
            return self._check_unknown(item)
        except Unreadable as exc:
            file_id = item.entry.file_id if isinstance(item, KnownFile) else file_id_of(item.key)
            return Verdict(item.key, file_id, FixityOutcome.UNREADABLE, detail=str(exc))

    # -- known files ---------------------------------------------------------------------------

    def _check_known(self, entry: CatalogueEntry) -> Verdict:
        findings: list[Finding] = []
        verdict = Verdict(entry.storage_path, entry.file_id, FixityOutcome.PASS)
        for attempt in range(1 + self.policy.confirmations):
            current = self.lookup(entry.file_id)
            if current is None:
                return Verdict(entry.storage_path, entry.file_id, None, detail="deleted meanwhile")
            entry = current
            verdict = Verdict(entry.storage_path, entry.file_id, FixityOutcome.PASS)
            findings = self._sidecar_findings(entry, verdict)
            if self.content_online and not entry.cold:
                findings += self._data_findings(entry, verdict)
            else:
                verdict.content_offline = True
            if not findings:
                if attempt:
                    log.warning(
                        "a mismatch did not repeat: the file is sound",
                        extra={"key": entry.storage_path, "reads": attempt + 1},
                    )
                return verdict
        verdict.outcome = FixityOutcome.FAIL
        verdict.findings = [_with_attempts(f, 1 + self.policy.confirmations) for f in findings]
        return verdict

    def _sidecar_findings(self, entry: CatalogueEntry, verdict: Verdict) -> list[Finding]:
        key = sidecar_path(entry.storage_path)
        raw = self._read_small(key)
        verdict.sidecar_checked = True
        if raw is None:
            return [Finding(FixityFindingKind.SIDECAR_MISSING, f"{key} is missing")]
        digest = hashlib.sha256(raw).hexdigest()
        if digest == entry.sidecar_sha256:
            return []  # the very bytes the worker validated and wrote
        try:
            sidecar = decode_sidecar(raw, key=key, element_id=self.element_id)
        except SidecarError as exc:
            return [Finding(FixityFindingKind.SIDECAR_INVALID, str(exc))]
        if (problem := _disagreement(sidecar, entry)) is not None:
            return [Finding(FixityFindingKind.SIDECAR_CHANGED, f"{key}: {problem}")]
        if entry.sidecar_sha256 is not None:
            return [
                Finding(
                    FixityFindingKind.SIDECAR_CHANGED,
                    f"{key} is not the sidecar the element's worker wrote",
                    expected_checksum=entry.sidecar_sha256,
                    observed_checksum=digest,
                )
            ]
        return []

    def _data_findings(self, entry: CatalogueEntry, verdict: Verdict) -> list[Finding]:
        digest = self._hash(entry.storage_path)
        if digest is None:
            return [
                Finding(
                    FixityFindingKind.DATA_MISSING,
                    f"{entry.storage_path} is missing",
                    expected_checksum=entry.checksum,
                    expected_size=entry.file_size,
                )
            ]
        verdict.bytes_read += digest.size
        verdict.checksum, verdict.size = digest.sha256, digest.size
        if digest.size != entry.file_size:
            shorter = "shorter" if digest.size < entry.file_size else "longer"
            return [
                Finding(
                    FixityFindingKind.SIZE_MISMATCH,
                    f"{entry.storage_path} is {digest.size} bytes, {shorter} than the "
                    f"{entry.file_size} its sidecar records",
                    entry.checksum,
                    digest.sha256,
                    entry.file_size,
                    digest.size,
                )
            ]
        if digest.sha256 != entry.checksum:
            return [
                Finding(
                    FixityFindingKind.CHECKSUM_MISMATCH,
                    f"{entry.storage_path} hashes to sha256 {digest.sha256}, its sidecar "
                    f"records {entry.checksum}",
                    entry.checksum,
                    digest.sha256,
                    entry.file_size,
                    digest.size,
                )
            ]
        return []

    # -- unknown objects -----------------------------------------------------------------------

    def _check_unknown(self, item: UnknownObject) -> Verdict:
        file_id = file_id_of(item.key)
        if file_id is not None and self.lookup(file_id) is not None:
            # Stored while the pass was planned: the next pass checks it as a file.
            return Verdict(item.key, file_id, None, detail="stored meanwhile")
        found = self._stat(item.key)
        if found is None:
            return Verdict(item.key, file_id, None, detail="gone meanwhile")
        landed = not item.has_sidecar and not is_sidecar(item.key)
        if landed and self._stat(sidecar_path(item.key)) is not None:
            # Its sidecar landed after the pass was planned: an upload completed.
            return Verdict(item.key, file_id, None, detail="stored meanwhile")
        if file_id is not None and not is_sidecar(item.key) and not item.has_sidecar:
            kind = FixityFindingKind.ORPHAN_DATA
            detail = f"{item.key} is a data file without a sidecar"
        else:
            kind = FixityFindingKind.STRAY_FILE
            detail = f"{item.key} is not a file the element's catalogue knows"
        finding = Finding(kind, detail, observed_size=found.size)
        return Verdict(item.key, file_id, FixityOutcome.FAIL, [finding])

    # -- reading, with retries -----------------------------------------------------------------

    def _retrying(self, what: str, read: Callable[[], object]) -> object:
        last: Exception | None = None
        for _ in range(self.policy.read_attempts):
            try:
                return read()
            except (ObjectMissing, InvalidKey):
                raise
            except Exception as exc:
                last = exc
        raise Unreadable(f"{what}: the storage failed {self.policy.read_attempts} times: {last}")

    def _read_small(self, key: str) -> bytes | None:
        try:
            raw = self._retrying(key, lambda: self.backend.read_bytes(key))
        except ObjectMissing:
            return None
        assert isinstance(raw, bytes)
        self.budget.take(size=len(raw), files=1)
        return raw

    def _stat(self, key: str) -> ObjectInfo | None:
        found = self._retrying(key, lambda: self.backend.stat(key))
        assert found is None or isinstance(found, ObjectInfo)
        return found

    def _hash(self, key: str) -> ObjectDigest | None:
        try:
            result = self._retrying(key, lambda: self.backend.digest(key))
        except ObjectMissing:
            return None
        assert isinstance(result, ObjectDigest)
        self.budget.take(size=result.size, files=1)
        return result


def sound_files(backend: StorageBackend, files: Sequence[Expected]) -> list[bool]:
    """:func:`proves_sound` for each of ``files`` (what a helper process answers)."""
    return [proves_sound(backend, expected) for expected in files]


def proves_sound(
    backend: StorageBackend, expected: Expected, budget: ReadBudget | None = None
) -> bool:
    """True when one read of the file's sidecar and of its data finds exactly the bytes
    recorded; False when anything differs or the storage fails (never raises). A False proves
    nothing: the file gets the full check, with its retries and confirmations. ``budget`` is
    told what was read (the auditor's read rate).

    On a local element a file of at most :data:`WHOLE_READ` bytes is read in one ``read``,
    asking for one byte more than it should hold; larger ones, and other storage, are hashed
    as they stream."""
    path, size, checksum, sidecar_sha256 = expected
    local = backend if isinstance(backend, LocalStorage) else None
    try:
        if local is not None:
            raw = local.read_at_most(sidecar_path(path), MAX_SIDECAR_BYTES + 1)
        else:
            raw = backend.read_bytes(sidecar_path(path))
        if budget is not None:
            budget.take(size=len(raw), files=1)
        if hashlib.sha256(raw).hexdigest() != sidecar_sha256:
            return False
        if local is not None and size <= WHOLE_READ:
            data = local.read_at_most(path, size + 1)
            found = ObjectDigest(len(data), hashlib.sha256(data).hexdigest())
        else:
            found = backend.digest(path)
        if budget is not None:
            budget.take(size=found.size, files=1)
    except Exception:
        return False
    return found.size == size and found.sha256 == checksum


def _disagreement(sidecar: Sidecar, entry: CatalogueEntry) -> str | None:
    recorded: Mapping[str, object] = {
        "file_id": entry.file_id,
        "storage_path": entry.storage_path,
        "file_size": entry.file_size,
        "checksum": entry.checksum,
    }
    for name, value in recorded.items():
        found = getattr(sidecar, name)
        if found != value:
            return f"{name} is {found!r}, the element recorded {value!r}"
    return None


def _with_attempts(finding: Finding, attempts: int) -> Finding:
    return Finding(
        finding.kind,
        finding.detail,
        finding.expected_checksum,
        finding.observed_checksum,
        finding.expected_size,
        finding.observed_size,
        attempts,
    )


__all__ = [
    "AuditItem",
    "AuditPolicy",
    "Auditor",
    "Expected",
    "Finding",
    "KnownFile",
    "UnknownObject",
    "Verdict",
    "plan_items",
    "proves_sound",
    "sort_key",
    "sound_files",
    "sound_verdict",
]
