"""Copying a local file into an element: a kernel copy, sha256 of the bytes that landed.

The copy runs in chunks. Each chunk is copied by the kernel (``copy_file_range``: no trip
through Python's memory), its write-back to the disk is started at once (``sync_file_range``,
so the final fsync has little left to wait for), and it is hashed from the *target's* pages
(``mmap``) on another thread while the next chunk is copied. The checksum is therefore of what
was written, not of what we meant to write, and hashing, copying and the disk all work at the
same time. Where the kernel can't copy between the two files, chunks go through ``pread`` and
``pwrite`` instead; where ``sync_file_range`` or ``syncfs`` don't exist, they are skipped or
replaced by plain fsyncs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import mmap
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

COPY_CHUNK = 16 * 1024 * 1024
"""Bytes per kernel copy and per hashing step."""

SMALL_FILE = 1024 * 1024
"""Files up to this size are read, hashed and written in one go: a thread hand-off, an mmap
and a write-back hint would cost more than they save."""

_KERNEL_COPY_UNSUPPORTED = {
    errno.EXDEV,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EOPNOTSUPP,
    errno.EBADF,
}
"""``copy_file_range`` refusals that mean "not between these files", not "the disk failed"."""

_SYNC_FILE_RANGE_WRITE = 2
"""Start write-back of dirty pages in the range; don't wait (linux/fs.h)."""

# Hashing of one file is sequential; hashing of several files in one batch runs side by side.
_HASHING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sha256")


def _libc_function(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A libc function by name (GIL released while it runs), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_sync_file_range = _libc_function(
    "sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint
)
_syncfs = _libc_function("syncfs", ctypes.c_int)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``[offset, offset+length)`` to the disk (a hint)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def sync_filesystem(path: str) -> bool:
    """Flush every dirty page and inode of the file system holding ``path`` (``syncfs``).

    Returns False where ``syncfs`` is not available (the caller then fsyncs file by file).
    Errors of write-back since the last call are reported as :class:`OSError`.
    """
    if _syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs {path}: {os.strerror(code)}")
    finally:
        os.close(fd)
    return True


def fsync_path(path: str, *, directory: bool = False) -> None:
    """fsync the file at ``path``; for a directory, that makes its entries (renames,
    creations, deletions) durable."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_file(source_fd: int, target_fd: int) -> tuple[int, str]:
    """Copy all of ``source_fd`` into the empty ``target_fd``: (bytes copied, sha256 of target).

    ``target_fd`` must be open for reading and writing (it is hashed through ``mmap``).
    """
    digest = hashlib.sha256()
    if os.fstat(source_fd).st_size <= SMALL_FILE:
        return _copy_small(source_fd, target_fd, digest)
    offset = 0
    hashing: Future[None] | None = None
    try:
        while length := _copy_range(source_fd, target_fd, offset, COPY_CHUNK):
            start_writeback(target_fd, offset, length)
            if hashing is not None:
                hashing.result()
            hashing = _HASHING.submit(_hash_range, digest, target_fd, offset, length)
            offset += length
    finally:
        if hashing is not None:
            hashing.result()
    return offset, digest.hexdigest()


def _copy_small(source_fd: int, target_fd: int, digest: hashlib._Hash) -> tuple[int, str]:
    offset = 0
    while data := os.pread(source_fd, SMALL_FILE, offset):
        digest.update(data)
        _write_all(target_fd, data, offset)
        offset += len(data)
    return offset, digest.hexdigest()


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset + len(data) - len(view))
        view = view[written:]


def _copy_range(source_fd: int, target_fd: int, offset: int, count: int) -> int:
    """Copy up to ``count`` bytes at ``offset``; 0 at the end of the source."""
    try:
        return os.copy_file_range(source_fd, target_fd, count, offset, offset)
    except OSError as exc:
        if exc.errno not in _KERNEL_COPY_UNSUPPORTED:
            raise
    data = os.pread(source_fd, count, offset)
    _write_all(target_fd, data, offset)
    return len(data)


def _hash_range(digest: hashlib._Hash, fd: int, offset: int, length: int) -> None:
    """Feed ``[offset, offset+length)`` of ``fd`` to ``digest`` straight from the page cache."""
    aligned = offset - offset % mmap.ALLOCATIONGRANULARITY
    size = length + offset - aligned
    try:
        pages = mmap.mmap(fd, size, prot=mmap.PROT_READ, offset=aligned)
    except OSError:  # a file system that can't map files: read the range instead
        digest.update(os.pread(fd, length, offset))
        return
    with pages, memoryview(pages) as view:
        digest.update(view[offset - aligned :])
