"""Staged files on local disk, reached without following links.

A path is walked from the staging root one component at a time with ``openat`` and
``O_NOFOLLOW``: a symlink anywhere (a directory or the file itself) stops the walk, so the file
opened is one that really lies under the root, whatever was swapped in meanwhile. Only a regular
file with a single link is accepted: a hard link could be someone else's bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from storage_workers.claim_checks import InvalidClaimCheck

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LINKED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class StagedFileMissing(Exception):
    """The staged file (or a directory on its way) does not exist."""


def _refused(relative: str) -> InvalidClaimCheck:
    return InvalidClaimCheck(
        f"staged file {relative} is not a regular file reached without links; it was not read"
    )


@contextlib.contextmanager
def _parent_dir(root: Path, relative: str) -> Iterator[tuple[int, str]]:
    """An fd of the directory holding ``relative`` (walked without links) and the file name."""
    *dirs, name = relative.split("/")
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StagedFileMissing(f"staging directory {root} does not exist") from None
    try:
        for part in dirs:
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise StagedFileMissing(f"staged file {relative} does not exist") from None
            except OSError as exc:
                if exc.errno in _LINKED:
                    raise _refused(relative) from None
                raise
            os.close(fd)
            fd = inner
        yield fd, name
    finally:
        os.close(fd)


def _regular(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1


def open_staged(root: Path, relative: str) -> int:
    """A read-only fd of the regular file ``root/relative``; raises :class:`InvalidClaimCheck`
    for a link or anything but a regular file, :class:`StagedFileMissing` when it is gone.
    Nothing is read."""
    with _parent_dir(root, relative) as (parent, name):
        try:
            # Looked at before it is opened: opening a FIFO or a device has effects of its own.
            if not _regular(os.stat(name, dir_fd=parent, follow_symlinks=False)):
                raise _refused(relative)
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            raise StagedFileMissing(f"staged file {relative} does not exist") from None
        except OSError as exc:
            if exc.errno in _LINKED:
                raise _refused(relative) from None
            raise
    try:
        if not _regular(os.fstat(fd)):  # swapped between the look and the open
            raise _refused(relative)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_staged(root: Path, relative: str) -> bool:
    """Unlink the regular file ``root/relative`` reached without links; False if it is gone.

    Raises :class:`InvalidClaimCheck` (and removes nothing) for a link or anything but a
    regular file."""
    try:
        with _parent_dir(root, relative) as (parent, name):
            try:
                if not _regular(os.stat(name, dir_fd=parent, follow_symlinks=False)):
                    raise _refused(relative)
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                return False
    except StagedFileMissing:
        return False
    return True
