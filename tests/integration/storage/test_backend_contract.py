"""One contract for every storage backend, run against a local directory and real S3."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage_workers.backends import (
    ByteRange,
    FileSource,
    InvalidKey,
    LocalStorage,
    ObjectMissing,
    RangeNotSatisfiable,
    StorageBackend,
    is_temporary,
)


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield bytes((sent + i) % 251 for i in range(n))
        sent += n


def test_pending_write_is_invisible_until_published(backend: StorageBackend) -> None:
    content = b"".join(chunks(3 * 1024 * 1024 + 17, 1 << 18))
    written = backend.write_pending("2026/01/02/03/a.bin", chunks(len(content), 1 << 18))
    assert written.size == len(content)
    assert written.sha256 == hashlib.sha256(content).hexdigest()
    if isinstance(backend, LocalStorage):
        assert backend.stat("2026/01/02/03/a.bin") is None
    backend.publish_pending(written)
    backend.sync_dirs(["2026/01/02/03/a.bin"])
    assert backend.stat("2026/01/02/03/a.bin").size == len(content)  # type: ignore[union-attr]
    assert b"".join(backend.read_range("2026/01/02/03/a.bin")) == content
    assert not [i for i in backend.list() if is_temporary(i.key)]


def test_a_local_file_source_is_stored_whole(backend: StorageBackend, tmp_path: Path) -> None:
    content = os.urandom(40 * 1024 * 1024 + 123)
    (tmp_path / "staged").write_bytes(content)
    written = backend.write_pending("2026/01/02/03/big.bin", FileSource(tmp_path / "staged"))
    assert (written.size, written.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    backend.publish_pending(written)
    assert b"".join(backend.read_range("2026/01/02/03/big.bin")) == content


@pytest.mark.parametrize("count", [3, 40], ids=["file by file", "whole batch"])
def test_a_batch_written_lazily_is_made_durable_together(
    backend: StorageBackend, count: int
) -> None:
    written = [
        backend.write_pending(f"2026/01/02/04/{i}.bin", [f"file {i}".encode()], durable=False)
        for i in range(count)
    ]
    backend.make_durable(written)
    for item in written:
        backend.publish_pending(item)
    backend.sync_dirs([w.key for w in written])
    assert [backend.read_bytes(f"2026/01/02/04/{i}.bin") for i in range(count)] == [
        f"file {i}".encode() for i in range(count)
    ]
    assert not [i for i in backend.list() if is_temporary(i.key)]


def test_discarded_write_leaves_nothing(backend: StorageBackend) -> None:
    written = backend.write_pending("x/y.bin", [b"abc"])
    backend.discard_pending(written)
    assert backend.stat("x/y.bin") is None
    assert list(backend.list()) == []


def test_ranges(backend: StorageBackend) -> None:
    backend.write_atomic("r/data", b"0123456789")
    assert b"".join(backend.read_range("r/data", ByteRange(2, 4))) == b"234"
    assert b"".join(backend.read_range("r/data", ByteRange(7))) == b"789"
    assert b"".join(backend.read_range("r/data", ByteRange(8, 100))) == b"89"
    with pytest.raises(RangeNotSatisfiable):
        backend.read_range("r/data", ByteRange(10))
    with pytest.raises(ObjectMissing):
        backend.read_range("r/none")


def test_atomic_small_files_list_stat_delete(backend: StorageBackend) -> None:
    backend.write_atomic(".artstore/element.json", b"{}")
    backend.write_atomic(".artstore/element.json", b'{"v":2}')
    assert backend.read_bytes(".artstore/element.json") == b'{"v":2}'
    backend.write_atomic("a/b/c.attr.json", "Отчёт".encode())
    keys = sorted(i.key for i in backend.list())
    assert keys == [".artstore/element.json", "a/b/c.attr.json"]
    assert [i.key for i in backend.list("a")] == ["a/b/c.attr.json"]
    assert sorted(backend.list_keys()) == keys
    assert list(backend.list_keys("a")) == ["a/b/c.attr.json"]
    backend.delete("a/b/c.attr.json")
    backend.delete("a/b/c.attr.json")
    assert backend.stat("a/b/c.attr.json") is None
    with pytest.raises(ObjectMissing):
        backend.read_bytes("a/b/c.attr.json")


@pytest.mark.parametrize("size", [0, 1, 64 * 1024, (1 << 20) + 7])
def test_digest_reads_the_whole_object(backend: StorageBackend, size: int) -> None:
    data = b"".join(chunks(size))
    backend.write_atomic(f"d/{size}", data)
    found = backend.digest(f"d/{size}")
    assert (found.size, found.sha256) == (size, hashlib.sha256(data).hexdigest())
    with pytest.raises(ObjectMissing):
        backend.digest("d/none")


def test_digest_counts_bytes_appended_after_the_object_was_written(tmp_path: Path) -> None:
    backend = LocalStorage(tmp_path)
    backend.write_atomic("d/x", b"a" * 1000)
    with open(tmp_path / "d/x", "ab") as handle:
        handle.write(b"b" * 5000)
    found = backend.digest("d/x")
    assert (found.size, found.sha256) == (
        6000,
        hashlib.sha256(b"a" * 1000 + b"b" * 5000).hexdigest(),
    )


@pytest.mark.parametrize(
    ("size", "limit"), [(0, 1), (10, 11), (10, 10), (10, 4), ((1 << 20) + 7, (1 << 20) + 8)]
)
def test_a_local_read_at_most_stops_at_its_limit_or_the_end(
    tmp_path: Path, size: int, limit: int
) -> None:
    backend = LocalStorage(tmp_path)
    data = b"".join(chunks(size))
    backend.write_atomic("d/x", data)
    assert backend.read_at_most("d/x", limit) == data[:limit]
    with pytest.raises(ObjectMissing):
        backend.read_at_most("d/none", limit)
    with pytest.raises(InvalidKey):
        backend.read_at_most("../x", limit)


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a//b", "a/./b", "a\x00b", "", "a/..", "./a", "a/"]
)
def test_keys_cannot_escape_the_element(backend: StorageBackend, key: str) -> None:
    with pytest.raises(InvalidKey):
        backend.write_atomic(key, b"x")
