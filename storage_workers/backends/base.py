"""The port every storage element is written and read through."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import events

CHUNK_SIZE = 1024 * 1024
"""Bytes per read/write when streaming; no file is ever held whole in memory."""

_SEGMENT = r"(?!\.\.?(?:/|\Z))[^/\x00]+"
_SAFE_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
"""Relative, '/'-separated, no empty, '.' or '..' segment, no NUL: one match per key (the
auditor and the facade check every key they touch, so this is on their hot path)."""


class BackendError(Exception):
    """Something went wrong talking to the storage; usually transient (retry, then DLQ)."""


class ServiceFault(BackendError):
    """The storage service failed the request on its side (an HTTP 5xx such as InternalError
    or SlowDown, or no answer at all): the same request is expected to succeed later, so it
    says nothing against the record that made it."""


class ObjectMissing(BackendError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key} does not exist")
        self.key = key


class InvalidKey(ValueError):
    """A key that could escape the element (``..``, absolute, NUL, empty segment)."""


class RangeNotSatisfiable(ValueError):
    """The requested byte range starts past the end of the object."""

    def __init__(self, size: int) -> None:
        super().__init__(f"range starts past the end of a {size}-byte object")
        self.size = size


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe, relative, '/'-separated path; raise ``InvalidKey``."""
    if _SAFE_KEY.fullmatch(key) is None:
        raise InvalidKey(f"{key!r} is not a safe relative key")
    return key


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ``stat`` and ``list`` know about a stored object."""

    key: str
    size: int


@dataclass(frozen=True, slots=True)
class ObjectDigest:
    """What reading an object to its end found: its size and sha256."""

    size: int
    sha256: str


def digest_of(chunks: Iterable[bytes]) -> ObjectDigest:
    """Size and sha256 of a stream of chunks."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return ObjectDigest(size, digest.hexdigest())


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive byte range ``[start, end]``; ``end=None`` reads to the end of the object."""

    start: int = 0
    end: int | None = None

    def resolve(self, size: int) -> tuple[int, int]:
        """(offset, length) for an object of ``size`` bytes, clamped to its end."""
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise ValueError(f"invalid range {self.start}-{self.end}")
        if self.start >= size and size > 0:
            raise RangeNotSatisfiable(size)
        last = size - 1 if self.end is None else min(self.end, size - 1)
        return self.start, max(0, last - self.start + 1)


WHOLE = ByteRange()
"""The whole object."""


class HashingReader:
    """Wraps a source of chunks, counting bytes and hashing them (sha256) as they pass."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._digest.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def sha256(self) -> str:
        """Hex digest of everything that went through so far."""
        return self._digest.hexdigest()


def iter_file(handle: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Chunks of an open binary file until EOF."""
    while chunk := handle.read(chunk_size):
        yield chunk


class FileSource:
    """Bytes in a local file: streamed as chunks, or copied by the kernel where it can.

    A local element copies such a source with ``copy_file_range`` instead of streaming it
    through Python; every other writer just iterates it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> BinaryIO:
        """The file, open for reading (raises ``FileNotFoundError`` when it is gone)."""
        return open(self.path, "rb")

    def __iter__(self) -> Iterator[bytes]:
        with self.open() as handle:
            yield from iter_file(handle)


@dataclass(frozen=True, slots=True)
class WrittenObject:
    """Bytes that reached the storage but are not visible under their key yet.

    Durable unless written with ``durable=False``; then :meth:`StorageBackend.make_durable`
    must run before it is published.
    """

    key: str
    size: int
    sha256: str
    token: str
    """Backend-specific handle (the temp path on disk; the key itself on S3)."""


class StorageBackend(Protocol):
    """Where an element's files live: a directory tree or an S3 bucket prefix.

    Keys are '/'-separated paths relative to the element root. Writes go through a temporary
    object that is durable before it becomes visible (:meth:`write_pending` then
    :meth:`publish_pending`); a batch may write its objects with ``durable=False`` and make
    them durable together (:meth:`make_durable`), which on a disk is one flush instead of one
    per file. Small files are written with :meth:`write_atomic`. Directory
    entries are made durable by :meth:`sync_dirs` (a no-op where the storage has no directories).
    """

    def describe(self) -> events.ElementBackend:
        """The element's location as announced in ``ElementRegistered``."""
        ...

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        """Stream ``chunks`` into a temporary object for ``key``; hash while writing.

        ``chunks`` may be a :class:`FileSource`. With ``durable=False`` the object is durable
        only after :meth:`make_durable`.
        """
        ...

    def make_durable(self, written: Sequence[WrittenObject]) -> None:
        """Make objects written with ``durable=False`` durable (all of them, or raise)."""
        ...

    def publish_pending(self, written: WrittenObject) -> None:
        """Make a pending object visible under its key (atomic rename where there is one)."""
        ...

    def discard_pending(self, written: WrittenObject) -> None:
        """Remove a pending object that will not be published."""
        ...

    def write_atomic(self, key: str, data: bytes) -> None:
        """Replace ``key`` with ``data`` so readers see the old or the new content, never part."""
        ...

    def sync_dirs(self, keys: Iterable[str]) -> None:
        """Make the directory entries of ``keys`` durable (renames and deletes inside them)."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole content of a small object (sidecars, journal entries)."""
        ...

    def read_range(self, key: str, byte_range: ByteRange = ...) -> Iterator[bytes]:
        """Stream ``byte_range`` of ``key`` in chunks; raises ``ObjectMissing`` first."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Size of ``key``, or None when it does not exist."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (recursively), temporaries included."""
        ...

    def digest(self, key: str) -> ObjectDigest:
        """Size and sha256 of the object's bytes, read to their end (``ObjectMissing``)."""
        ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """The keys :meth:`list` yields, without their sizes (a local element skips a stat per
        file: the auditor plans a pass over every key and needs sizes only of strays)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error."""
        ...

    def free_bytes(self) -> int | None:
        """Free space the storage itself reports, or None when it has no such limit."""
        ...

    def probe(self) -> None:
        """Return when the storage answers; raise :class:`BackendError` (or ``OSError``) when
        it is away. Cheap: called while an outage lasts, every few seconds."""
        ...


TEMP_MARKER = ".tmp-"
"""Temporary objects are named ``<key>.tmp-<random>``: recovery removes any it finds."""


def is_temporary(key: str) -> bool:
    """True for the temporary objects a crashed write may leave behind."""
    return TEMP_MARKER in key.rsplit("/", 1)[-1]
