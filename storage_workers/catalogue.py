"""What an element holds, rebuilt from its sidecars alone (SPEC §3: the element is the truth)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from events import RetentionPolicy
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
            sidecar.cold_copy is not None,
        )


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

    def expired(self, now: datetime) -> list[CatalogueEntry]:
        """Temporary files whose time is up, oldest first."""
        due = [
            e
            for e in self._entries.values()
            if e.ttl_expires_at is not None and e.ttl_expires_at <= now
        ]
        return sorted(due, key=lambda e: e.ttl_expires_at or now)
