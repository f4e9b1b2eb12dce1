"""What an element holds, rebuilt from its sidecars alone (SPEC §3: the element is the truth)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events import DeletionReason, RetentionPolicy
from storage_workers.backends import StorageBackend, is_temporary
from storage_workers.naming import is_sidecar
from storage_workers.sidecar import Sidecar, SidecarError, decode_sidecar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """Enough about a stored file to answer commands without reading its sidecar."""

    file_id: UUID
    storage_path: str
    file_size: int
    checksum: str
    retention_policy: RetentionPolicy
    ttl_expires_at: datetime | None
    sidecar_sha256: str | None = None
    """Hash of the sidecar's bytes as the worker wrote (or first read) them: fixity checks
    that nobody else changed it."""
    retain_until: datetime | None = None
    hold_placed_at: datetime | None = None
    """When its legal hold was placed (None: not held). Nothing deletes a held file."""
    document_id: UUID | None = None
    document_version: int = 1
    uploaded_by: str = ""
    cold: bool = False
    """The content is on the element's cold tier (its sidecar says so), not online."""

    @classmethod
    def of(cls, sidecar: Sidecar, encoded: bytes | None = None) -> CatalogueEntry:
        """The entry for a sidecar (``encoded``: its bytes as stored, when known)."""
        return cls(
            sidecar.file_id,
            sidecar.storage_path,
            sidecar.file_size,
            sidecar.checksum,
            sidecar.retention_policy,
            sidecar.ttl_expires_at,
            None if encoded is None else hashlib.sha256(encoded).hexdigest(),
            sidecar.retain_until,
            sidecar.legal_hold.placed_at if sidecar.legal_hold else None,
            sidecar.document,
            sidecar.document_number,
            sidecar.created_by_id,
            sidecar.cold_copy is not None,
        )

    @property
    def held(self) -> bool:
        """Under legal hold."""
        return self.hold_placed_at is not None

    def expiry(self, *, retention_applies: bool) -> tuple[DeletionReason, datetime] | None:
        """When and why the file is due to go: its TTL, or (where the element's mode lets
        retention expiry delete, see :func:`events.modes.retention_expires_in`) its retention
        period. None: it never expires by itself."""
        if self.ttl_expires_at is not None:
            return DeletionReason.TTL_EXPIRED, self.ttl_expires_at
        if self.retain_until is not None and retention_applies:
            return DeletionReason.RETENTION_EXPIRED, self.retain_until
        return None


def scan_sidecars(
    backend: StorageBackend, element_id: str
) -> Iterator[tuple[str, Sidecar | SidecarError]]:
    """Every sidecar of the element (skipping ``.artstore/``), parsed, or why it can't be."""
    for key, result, _raw in _scan(backend, element_id):
        yield key, result


def _scan(
    backend: StorageBackend, element_id: str
) -> Iterator[tuple[str, Sidecar | SidecarError, bytes]]:
    for info in backend.list():
        key = info.key
        if key.startswith(".artstore/") or not is_sidecar(key) or is_temporary(key):
            continue
        raw = backend.read_bytes(key)
        try:
            yield key, decode_sidecar(raw, key=key, element_id=element_id), raw
        except SidecarError as exc:
            yield key, exc, raw


class Catalogue:
    """file_id -> entry, plus the bytes the element holds."""

    def __init__(self) -> None:
        self._entries: dict[UUID, CatalogueEntry] = {}
        self.used_bytes = 0
        self.unreadable: list[str] = []

    @classmethod
    def load(cls, backend: StorageBackend, element_id: str) -> Catalogue:
        """Scan the element's sidecars."""
        catalogue = cls()
        for key, result, raw in _scan(backend, element_id):
            if isinstance(result, SidecarError):
                log.error("unreadable sidecar", extra={"key": key, "error": str(result)})
                catalogue.unreadable.append(key)
                continue
            catalogue.add(CatalogueEntry.of(result, raw))
        return catalogue

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[CatalogueEntry]:
        """Every entry (a snapshot)."""
        return list(self._entries.values())

    def get(self, file_id: UUID) -> CatalogueEntry | None:
        """The entry of ``file_id``, if the element holds it."""
        return self._entries.get(file_id)

    def add(self, entry: CatalogueEntry) -> None:
        """Record a stored (or rewritten) file."""
        previous = self._entries.get(entry.file_id)
        if previous is not None:
            self.used_bytes -= previous.file_size
        self._entries[entry.file_id] = entry
        self.used_bytes += entry.file_size

    def remove(self, file_id: UUID) -> None:
        """Forget a deleted file."""
        entry = self._entries.pop(file_id, None)
        if entry is not None:
            self.used_bytes -= entry.file_size

    def online(self) -> list[CatalogueEntry]:
        """Files whose content is online (not moved to the cold tier), in path order."""
        return sorted(
            (e for e in self._entries.values() if not e.cold), key=lambda e: e.storage_path
        )

    def expired(self, now: datetime, *, retention_applies: bool = False) -> list[Due]:
        """Files whose TTL (or, with ``retention_applies``, retention period) is over, oldest
        first, held ones included (the caller keeps those)."""
        due: list[Due] = []
        for entry in self._entries.values():
            expiry = entry.expiry(retention_applies=retention_applies)
            if expiry is not None and expiry[1] <= now:
                due.append(Due(entry, expiry[0], expiry[1]))
        return sorted(due, key=lambda d: d.due_at)


@dataclass(frozen=True, slots=True)
class Due:
    """A file whose time is up: why, and since when."""

    entry: CatalogueEntry
    reason: DeletionReason
    due_at: datetime
