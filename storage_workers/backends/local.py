"""A storage element in a local directory tree: temp file, fsync, rename, fsync directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import events
from storage_workers.backends.base import (
    CHUNK_SIZE,
    TEMP_MARKER,
    WHOLE,
    BackendError,
    ByteRange,
    FileSource,
    ObjectDigest,
    ObjectInfo,
    ObjectMissing,
    WrittenObject,
    check_key,
)
from storage_workers.backends.filecopy import copy_file, fsync_path, sync_filesystem

BATCH_FLUSH_MIN = 16
"""From this many objects on, :meth:`LocalStorage.make_durable` flushes the file system once
(``syncfs``) instead of fsyncing each file: one journal commit for the whole batch."""


class LocalStorage:
    """:class:`StorageBackend` over a directory; POSIX rename gives atomic visibility."""

    def __init__(self, root: Path | str, *, create: bool = True) -> None:
        """``create``: make the directory when it is missing (an element's first start);
        readers pass False, so a directory that went away is an outage, not a new element."""
        self.root = Path(root).resolve()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)
        self._identity = _identity(self._root)
        """The directory's (device, inode) when opened: another one mounted or made in its
        place later is not this element."""

    def _away(self) -> str | None:
        """Why the element's directory is not the one opened (None while it is)."""
        identity = _identity(self._root)
        if identity is None:
            return f"the element's directory {self._root} is not there"
        if self._identity is not None and identity != self._identity:
            return (
                f"the element's directory {self._root} is not the one opened at start "
                "(another file system mounted there, or the directory made again)"
            )
        return None

    def _absent(self, key: str) -> BackendError | ObjectMissing:
        """What a missing file means: the file is missing, or the whole element is away."""
        away = self._away()
        return BackendError(away) if away is not None else ObjectMissing(key)

    def _parent_for(self, path: Path) -> None:
        """Make ``path``'s directory below the root, never the root itself."""
        away = self._away()
        if away is not None:
            raise BackendError(away)
        path.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> events.ElementBackend:
        return events.LocalBackend(root=str(self.root))

    def path(self, key: str) -> Path:
        """The file behind ``key`` (validated: never outside the root)."""
        return self.root / check_key(key)

    def _file(self, key: str) -> str:
        """:meth:`path` as a string, without pathlib's cost (reads of many small files)."""
        return f"{self._root}/{check_key(key)}"

    def _temp_for(self, key: str) -> Path:
        target = self.path(key)
        return target.with_name(f"{target.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        if isinstance(chunks, FileSource):
            return self._copy_pending(key, chunks, durable=durable)
        temp = self._temp_for(key)
        digest = hashlib.sha256()
        size = 0
        hashing = _Pipeline(digest.update)
        try:
            with _create(temp, self._parent_for) as handle:
                for chunk in chunks:
                    # Hash on another thread while this one writes: both release the GIL.
                    hashing.feed(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                # The fsync runs while the hashing thread finishes: both wait on other work.
                if durable:
                    os.fsync(handle.fileno())
                hashing.close()
        except BaseException:
            hashing.close()
            temp.unlink(missing_ok=True)
            raise
        return WrittenObject(key, size, digest.hexdigest(), str(temp))

    def _copy_pending(self, key: str, source: FileSource, *, durable: bool) -> WrittenObject:
        """A local file into a temp object by kernel copy, hashed from what landed."""
        temp = self._temp_for(key)
        with source.open() as src:
            target = _create_fd(temp, self._parent_for)
            try:
                size, sha256 = copy_file(src.fileno(), target)
                if durable:
                    os.fsync(target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            finally:
                os.close(target)
        return WrittenObject(key, size, sha256, str(temp))

    def make_durable(self, written: Sequence[WrittenObject]) -> None:
        if len(written) >= BATCH_FLUSH_MIN and sync_filesystem(str(self.root)):
            return
        for item in written:
            fsync_path(item.token)

    def publish_pending(self, written: WrittenObject) -> None:
        os.replace(written.token, self.path(written.key))

    def discard_pending(self, written: WrittenObject) -> None:
        Path(written.token).unlink(missing_ok=True)

    def write_atomic(self, key: str, data: bytes) -> None:
        written = self.write_pending(key, (data,))
        self.publish_pending(written)

    def sync_dirs(self, keys: Iterable[str]) -> None:
        for directory in sorted({self.path(key).parent for key in keys}):
            if directory.is_dir():
                fsync_path(str(directory), directory=True)

    def read_bytes(self, key: str) -> bytes:
        try:
            return b"".join(_whole_file(self._file(key), key))
        except ObjectMissing:
            raise self._absent(key) from None

    def read_at_most(self, key: str, limit: int) -> bytes:
        """The first ``limit`` bytes of ``key`` (all of it when shorter): one ``open`` and as
        few reads as the file allows, no file object (the auditor proves many small files
        sound this way: asking for one byte more than a file should hold tells a file that
        grew from one that did not)."""
        try:
            fd = os.open(self._file(key), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise self._absent(key) from None
        try:
            data = os.read(fd, limit)
            if not data or len(data) == limit:
                return data
            parts = [data]
            got = len(data)
            while got < limit and (more := os.read(fd, limit - got)):
                parts.append(more)
                got += len(more)
            return b"".join(parts)
        finally:
            os.close(fd)

    def read_range(self, key: str, byte_range: ByteRange = WHOLE) -> Iterator[bytes]:
        try:
            handle = open(self._file(key), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise self._absent(key) from None
        offset, length = byte_range.resolve(os.fstat(handle.fileno()).st_size)
        return _chunks(handle, offset, length)

    def digest(self, key: str) -> ObjectDigest:
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in _whole_file(self._file(key), key):
                digest.update(chunk)
                size += len(chunk)
        except ObjectMissing:
            raise self._absent(key) from None
        return ObjectDigest(size, digest.hexdigest())

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, os.stat(self._file(key)).st_size)
        except FileNotFoundError:
            if (away := self._away()) is not None:
                raise BackendError(away) from None
            return None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        skip = len(self._root) + 1
        for entry in self._walk(prefix):
            with contextlib.suppress(FileNotFoundError):
                yield ObjectInfo(entry.path[skip:], entry.stat(follow_symlinks=False).st_size)

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        skip = len(self._root) + 1
        for entry in self._walk(prefix):
            yield entry.path[skip:]

    def _walk(self, prefix: str) -> Iterator[os.DirEntry[str]]:
        """Every entry that is not a directory under ``prefix``, recursively."""
        start = f"{self._root}/{prefix.strip('/')}" if prefix.strip("/") else self._root
        if (away := self._away()) is not None:
            raise BackendError(away)  # an element away lists as away, not as empty
        pending = [start]
        while pending:
            directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                # Removed while we walked (a delete, a TTL sweep), or the prefix names a file:
                # it holds no objects to list. Readers that need a key check for it themselves.
                continue
            for entry in entries:
                # Plain string keys: pathlib costs more than the stat on large elements.
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    yield entry

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def free_bytes(self) -> int | None:
        # An element away says nothing of its disk: heartbeats go on (with the configured
        # capacity) and the outage says the rest.
        if self._away() is not None:
            return None
        try:
            return shutil.disk_usage(self.root).free
        except FileNotFoundError:
            return None  # gone since

    def probe(self) -> None:
        if (away := self._away()) is not None:
            raise BackendError(away)
        if not os.access(self.root, os.W_OK):
            raise BackendError(f"the element's directory {self.root} is not writable")


def _whole_file(path: str, key: str) -> Iterator[bytes]:
    """Every byte of a file, read with the least work per small file (the auditor reads many):
    no file object, reads sized from its length, so a file that does not grow costs one read.
    Reading goes on past that length while there is more: bytes appended since the stat count.
    Raises ``ObjectMissing`` (at the first chunk) when the file does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ObjectMissing(key) from None
    try:
        expected = os.fstat(fd).st_size
        size = 0
        while True:
            want = min(CHUNK_SIZE, expected - size + 1) if size <= expected else CHUNK_SIZE
            chunk = os.read(fd, want)
            if not chunk:
                return
            size += len(chunk)
            yield chunk
            if size == expected and len(chunk) < want:
                return  # asked for one byte past the length and got none: the end
    finally:
        os.close(fd)


def _identity(path: str) -> tuple[int, int] | None:
    """A directory's (device, inode), or None when it is not a directory."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


def _create(path: Path, make_parent: Callable[[Path], None]) -> BinaryIO:
    """A new, unbuffered file; its directory is made (by ``make_parent``) only when it is
    missing (rarely)."""
    try:
        return open(path, "xb", buffering=0)
    except FileNotFoundError:
        make_parent(path)
        return open(path, "xb", buffering=0)


def _create_fd(path: Path, make_parent: Callable[[Path], None]) -> int:
    """A new file open for reading and writing (a kernel copy's target is hashed by mmap)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:
        make_parent(path)
        return os.open(path, flags, 0o666)


class _Pipeline:
    """Runs ``consume`` over fed chunks on a helper thread (only for large inputs)."""

    THRESHOLD = 4 * 1024 * 1024

    def __init__(self, consume: Callable[[bytes], object]) -> None:
        self._consume = consume
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._seen = 0

    def feed(self, chunk: bytes) -> None:
        self._seen += len(chunk)
        if self._queue is None and self._seen > self.THRESHOLD:
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        if self._queue is None:
            self._consume(chunk)
        else:
            self._queue.put(chunk)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._consume(chunk)

    def close(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None


def _chunks(handle: BinaryIO, offset: int, length: int) -> Iterator[bytes]:
    with handle:
        handle.seek(offset)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
