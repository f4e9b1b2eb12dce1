"""The one claim-check writer (the SDK's and the facade's): a staged file is complete before it
has its name, hashed as it streams, and a failure leaves nothing under the key."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events import FileStagedObject
from events.staging import DirectoryWriter, StagingFailed
from facade.problems import PayloadTooLarge
from facade.staging import StreamStaging

KEY = "sa_1/2026/12/01/0b6f9d1e-5a1c-4a43-9a44-0c1d2b3e4f50"


class Broken(io.RawIOBase):
    """A source that fails after its first chunk."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise OSError("the source went away")
        return b"x" * 10


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_a_staged_file_is_complete_counted_and_hashed(tmp_path: Path) -> None:
    content = b"claim check " * 100_000
    seen: list[int] = []
    staged = DirectoryWriter(tmp_path, chunk_bytes=4096).write(
        KEY, io.BytesIO(content), seen.append
    )
    assert staged.staged == FileStagedObject(path=KEY)
    assert (staged.size, staged.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert (tmp_path / KEY).read_bytes() == content
    assert sum(seen) == len(content)
    assert leftovers(tmp_path) == [tmp_path / KEY]


def test_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="went away"):
        DirectoryWriter(tmp_path, chunk_bytes=10).write(KEY, Broken())
    assert leftovers(tmp_path) == []


def test_a_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    with pytest.raises(StagingFailed) as caught:
        DirectoryWriter(blocked).write(KEY, io.BytesIO(b"data"))
    assert caught.value.opening
    assert str(blocked) in str(caught.value)


def test_discarding_removes_the_staged_file(tmp_path: Path) -> None:
    writer = DirectoryWriter(tmp_path)
    staged = writer.write(KEY, io.BytesIO(b"data"))
    writer.discard(staged.staged)
    assert leftovers(tmp_path) == []


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_a_request_body_is_staged_through_the_same_writer(tmp_path: Path) -> None:
    staging = StreamStaging(DirectoryWriter(tmp_path))
    staged = await staging.stage(KEY, body(b"one ", b"two ", b"three"), max_bytes=100)
    assert (tmp_path / KEY).read_bytes() == b"one two three"
    assert staged.sha256 == hashlib.sha256(b"one two three").hexdigest()


async def test_a_body_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    staging = StreamStaging(DirectoryWriter(tmp_path))
    chunks = [b"x" * 1000] * 50  # more than the queue holds: the writer must still stop
    with pytest.raises(PayloadTooLarge):
        await staging.stage(KEY, body(*chunks), max_bytes=20_000)
    assert leftovers(tmp_path) == []


async def test_a_body_that_breaks_off_leaves_nothing(tmp_path: Path) -> None:
    async def breaking() -> AsyncIterator[bytes]:
        yield b"first"
        raise ConnectionResetError("the client went away")

    staging = StreamStaging(DirectoryWriter(tmp_path))
    with pytest.raises(ConnectionResetError):
        await staging.stage(KEY, breaking(), max_bytes=100)
    assert leftovers(tmp_path) == []
