"""Writing a claim check: an upload's bytes left where the storage workers read them (under
:func:`~events.models.common.staged_key`), hashed as they stream, never held whole in memory,
and visible under their name only once complete. The SDK and the facade both stage with this.

Writing blocks (run it in a thread); the source is anything with ``read(size)``."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from minio import Minio
from urllib3.exceptions import HTTPError

from events.models.common import FileStagedObject, S3StagedObject, StagedObject

Progress = Callable[[int], None]
"""Called with the number of bytes just read from the source (from the writing thread)."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class StagedBytes:
    """Where the bytes wait, how many there were and their sha256."""

    staged: StagedObject
    size: int
    sha256: str


class StagingFailed(Exception):
    """The staging directory refused the bytes (the :class:`OSError` is ``cause``); with
    ``opening`` it refused them before a byte was written (a missing or read-only directory)."""

    def __init__(self, root: Path, cause: OSError, *, opening: bool) -> None:
        super().__init__(f"cannot stage in directory {root}: {cause.strerror or cause}")
        self.root = root
        self.cause = cause
        self.opening = opening


class HashingReader:
    """A file-like view of ``source`` that hashes, counts and reports what is read through it."""

    def __init__(self, source: Readable, progress: Progress | None, chunk: int) -> None:
        self._source = source
        self._progress = progress
        self._chunk = chunk
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(self._chunk if size is None or size < 0 else size)
        if data:
            self.digest.update(data)
            self.size += len(data)
            if self._progress is not None:
                self._progress(len(data))
        return data


class ClaimCheckWriter(Protocol):
    """Somewhere storage workers can read staged bytes from."""

    def write(self, key: str, source: Readable, progress: Progress | None = None) -> StagedBytes:
        """Copy ``source`` to ``key``; if anything fails nothing is left under ``key``."""
        ...

    def discard(self, staged: StagedObject) -> None:
        """Remove a staged object that no command will point to."""
        ...


class DirectoryWriter:
    """A staging directory shared with the workers; a file appears under its name only once it
    is complete and fsynced, so a worker never reads half a file."""

    def __init__(self, root: Path, *, chunk_bytes: int = 1024 * 1024) -> None:
        self.root = root
        self.chunk_bytes = chunk_bytes

    def write(self, key: str, source: Readable, progress: Progress | None = None) -> StagedBytes:
        target = self.root / key
        partial = target.with_name(target.name + ".partial")
        reader = HashingReader(source, progress, self.chunk_bytes)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = partial.open("wb")
        except OSError as exc:
            raise StagingFailed(self.root, exc, opening=True) from exc
        try:
            with out:
                while chunk := reader.read(self.chunk_bytes):
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise StagingFailed(self.root, exc, opening=False) from exc
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StagedBytes(FileStagedObject(path=key), reader.size, reader.digest.hexdigest())

    def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, FileStagedObject):
            (self.root / staged.path).unlink(missing_ok=True)


class S3Writer:
    """Staged objects in a bucket (under ``prefix``), written by multipart upload as the
    source is read."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        prefix: str,
        *,
        part_bytes: int = 8 * 1024 * 1024,
        chunk_bytes: int = 1024 * 1024,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes
        self.chunk_bytes = chunk_bytes

    def write(self, key: str, source: Readable, progress: Progress | None = None) -> StagedBytes:
        name = f"{self.prefix}{key}"
        reader = HashingReader(source, progress, self.chunk_bytes)
        try:
            self.client.put_object(
                self.bucket,
                name,
                reader,  # type: ignore[arg-type]  # read(size) is all put_object uses
                -1,
                part_size=self.part_bytes,
            )
        except HTTPError:
            raise  # the endpoint did not answer (after the client's retries): nothing written
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.remove_object(self.bucket, name)
            raise
        staged = S3StagedObject(bucket=self.bucket, key=name)
        return StagedBytes(staged, reader.size, reader.digest.hexdigest())

    def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, S3StagedObject):
            self.client.remove_object(staged.bucket, staged.key)
