"""Copying a local file into an element: the bytes and the checksum of what landed."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from pathlib import Path

import pytest

from storage_workers.backends import filecopy
from storage_workers.backends.filecopy import COPY_CHUNK, SMALL_FILE, copy_file


def copy(source: Path, target: Path) -> tuple[int, str]:
    with open(source, "rb") as src:
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        try:
            return copy_file(src.fileno(), fd)
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    "size",
    [0, 1, 4096, SMALL_FILE, SMALL_FILE + 1, 2 * COPY_CHUNK + 12345],
    ids=["empty", "one byte", "4 KB", "small limit", "just large", "three chunks"],
)
def test_copies_every_byte_and_hashes_what_landed(tmp_path: Path, size: int) -> None:
    content = os.urandom(size)
    (tmp_path / "in").write_bytes(content)
    copied, sha256 = copy(tmp_path / "in", tmp_path / "out")
    assert copied == size
    assert sha256 == hashlib.sha256(content).hexdigest()
    assert (tmp_path / "out").read_bytes() == content


def test_falls_back_to_reads_and_writes_where_the_kernel_cannot_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", cannot)
    content = os.urandom(COPY_CHUNK + 5)
    (tmp_path / "in").write_bytes(content)
    assert copy(tmp_path / "in", tmp_path / "out") == (
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert (tmp_path / "out").read_bytes() == content


def test_a_failing_disk_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "copy_file_range", broken)
    (tmp_path / "in").write_bytes(os.urandom(SMALL_FILE + 1))
    with pytest.raises(OSError, match="I/O error"):
        copy(tmp_path / "in", tmp_path / "out")


def test_short_kernel_copies_are_hashed_from_unaligned_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.copy_file_range

    def short(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        return real(src, dst, min(count, 1_000_003), offset_src, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", short)
    content = os.urandom(5_000_000)
    (tmp_path / "in").write_bytes(content)
    assert copy(tmp_path / "in", tmp_path / "out")[1] == hashlib.sha256(content).hexdigest()


def test_file_system_flush_reports_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        filecopy.sync_filesystem(str(tmp_path / "nowhere"))
    assert filecopy.sync_filesystem(str(tmp_path)) is sys.platform.startswith("linux")


def test_hashes_by_reading_where_files_cannot_be_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENODEV, "no mmap here")

    monkeypatch.setattr(filecopy.mmap, "mmap", cannot)
    content = os.urandom(COPY_CHUNK + 77)
    (tmp_path / "in").write_bytes(content)
    assert copy(tmp_path / "in", tmp_path / "out")[1] == hashlib.sha256(content).hexdigest()
