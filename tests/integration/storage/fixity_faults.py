"""Faults planted in a real element, and a backend that fails the way a flaky S3 does."""

from __future__ import annotations

import json
import random
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from events import FixityFindingKind
from storage_workers.backends import BackendError, ByteRange, StorageBackend
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import Sidecar
from tests.factories import stored_sidecar

WHOLE = ByteRange()

K = FixityFindingKind

FAULT_MIX: dict[str, int] = {
    "bit_flip": 150,
    "truncate": 70,
    "append": 70,
    "delete_data": 60,
    "delete_sidecar": 60,
    "garble_sidecar": 35,
    "edit_sidecar": 35,
    "stray_file": 25,
    "orphan_data": 20,
}
"""Faults per element: 525, so two elements hold over 1,000."""
EXPECTED_KIND = {
    "bit_flip": K.CHECKSUM_MISMATCH,
    "truncate": K.SIZE_MISMATCH,
    "append": K.SIZE_MISMATCH,
    "delete_data": K.DATA_MISSING,
    "delete_sidecar": K.SIDECAR_MISSING,
    "garble_sidecar": K.SIDECAR_INVALID,
    "edit_sidecar": K.SIDECAR_CHANGED,
    "stray_file": K.STRAY_FILE,
    "orphan_data": K.ORPHAN_DATA,
}
SOUND_FILES = 120


@dataclass
class PlantedElement:
    """Files stored in an element, and the faults planted among them afterwards."""

    element_id: str
    files: list[Sidecar] = field(default_factory=list)
    faults: dict[str, FixityFindingKind] = field(default_factory=dict)
    """Key -> the kind the auditor must report for it."""


def store_files(backend: StorageBackend, element_id: str, count: int, seed: int) -> list[Sidecar]:
    """``count`` small files with their sidecars, as the worker writes them."""
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)

    def one(i: int) -> Sidecar:
        content = rng.randbytes(rng.randint(64, 2048))
        sidecar = stored_sidecar(
            content,
            element_id=element_id,
            filename=f"doc-{i}.bin",
            stored_at=base + timedelta(minutes=i),
        )
        backend.write_atomic(sidecar.storage_path, content)
        backend.write_atomic(sidecar_path(sidecar.storage_path), sidecar.encode())
        return sidecar

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def store_files_of_size(
    backend: StorageBackend, element_id: str, count: int, size: int
) -> list[Sidecar]:
    """``count`` files of ``size`` random bytes each, with their sidecars."""
    base = datetime(2026, 11, 1, tzinfo=UTC)

    def one(i: int) -> Sidecar:
        content = random.Random(i).randbytes(size)
        sidecar = stored_sidecar(
            content,
            element_id=element_id,
            filename=f"doc-{i}.bin",
            stored_at=base + timedelta(seconds=i),
        )
        backend.write_atomic(sidecar.storage_path, content)
        backend.write_atomic(sidecar_path(sidecar.storage_path), sidecar.encode())
        return sidecar

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def plant_faults(backend: StorageBackend, element: PlantedElement, seed: int) -> None:
    """Corrupt the element's files as FAULT_MIX says, each fault on a file of its own."""
    rng = random.Random(seed)
    victims = iter(rng.sample(element.files, sum(FAULT_MIX.values()) - _new_objects()))
    jobs: list[tuple[str, Sidecar | None]] = []
    for fault, count in FAULT_MIX.items():
        for _ in range(count):
            jobs.append((fault, None if fault in ("stray_file", "orphan_data") else next(victims)))

    def apply(job: tuple[str, Sidecar | None]) -> tuple[str, FixityFindingKind]:
        fault, sidecar = job
        key = _plant(backend, fault, sidecar, random.Random(rng.random()), element.element_id)
        return key, EXPECTED_KIND[fault]

    with ThreadPoolExecutor(8) as pool:
        element.faults.update(pool.map(apply, jobs))


def _new_objects() -> int:
    return FAULT_MIX["stray_file"] + FAULT_MIX["orphan_data"]


def _plant(
    backend: StorageBackend, fault: str, sidecar: Sidecar | None, rng: random.Random, element: str
) -> str:
    if sidecar is None:
        if fault == "stray_file":
            key = f"2026/11/{rng.randint(1, 28):02d}/00/stray-{uuid.uuid4().hex}.tmpdata"
        else:
            key = f"2026/11/02/03/lost_tester_20261102T030000_{uuid.uuid4()}.bin"
        backend.write_atomic(key, rng.randbytes(rng.randint(1, 500)))
        return key
    path = sidecar.storage_path
    data = backend.read_bytes(path)
    if fault == "bit_flip":
        at = rng.randrange(len(data))
        flipped = bytes([data[at] ^ (1 << rng.randrange(8))])
        backend.write_atomic(path, data[:at] + flipped + data[at + 1 :])
    elif fault == "truncate":
        backend.write_atomic(path, data[: rng.randrange(len(data))])
    elif fault == "append":
        backend.write_atomic(path, data + rng.randbytes(rng.randint(1, 64)))
    elif fault == "delete_data":
        backend.delete(path)
    elif fault == "delete_sidecar":
        backend.delete(sidecar_path(path))
    elif fault == "garble_sidecar":
        raw = sidecar.encode()
        backend.write_atomic(sidecar_path(path), raw[: rng.randrange(1, len(raw) - 1)])
    elif fault == "edit_sidecar":
        document = json.loads(sidecar.encode())
        document["description"] = "edited by hand"
        backend.write_atomic(sidecar_path(path), json.dumps(document).encode())
    else:
        raise AssertionError(fault)
    return path


class FlakyStorage:
    """A real backend that fails like a flaky S3: every ``every``-th key's first read is
    refused, and the next one's is cut short after some bytes, then the key reads normally."""

    def __init__(self, backend: StorageBackend, every: int = 3) -> None:
        self._backend = backend
        self._every = every
        self._calls: dict[tuple[str, str], int] = {}
        self.injected = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _first_time(self, method: str, key: str) -> bool:
        seen = self._calls.get((method, key), 0)
        self._calls[(method, key)] = seen + 1
        content = not key.startswith(".artstore/")  # the auditor's own state is not flaky
        return content and seen == 0 and zlib.crc32(key.encode()) % self._every == 0

    def read_bytes(self, key: str) -> bytes:
        if self._first_time("read_bytes", key):
            self.injected += 1
            raise BackendError(f"injected: S3 request for {key} failed: 503 SlowDown")
        return self._backend.read_bytes(key)

    def stat(self, key: str) -> Any:
        if self._first_time("stat", key):
            self.injected += 1
            raise BackendError(f"injected: S3 request for {key} failed: connection reset")
        return self._backend.stat(key)

    def read_range(self, key: str, byte_range: ByteRange = WHOLE) -> Iterator[bytes]:
        chunks = self._backend.read_range(key, byte_range)
        if not self._first_time("read_range", key):
            return chunks
        self.injected += 1
        return _cut_short(chunks, key)


def _cut_short(chunks: Iterator[bytes], key: str) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk[: len(chunk) // 2]
        raise BackendError(f"injected: the connection dropped while reading {key}")
