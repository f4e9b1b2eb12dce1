"""Staging: the claim check. The producer leaves the bytes where workers read them, hashing
them while they stream (never the whole file in memory), before any command is published."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from events import FileStagedObject, S3StagedObject, StagedObject
from producers.errors import Unavailable

Progress = Callable[[int], None]
"""Called with the number of bytes just staged (from a worker thread)."""


@dataclass(frozen=True)
class Staged:
    """Where the bytes wait, how many there were and their sha256."""

    staged: StagedObject
    size: int
    sha256: str


class Staging(Protocol):
    """Somewhere storage workers can read staged bytes from."""

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        """Copy ``source`` to ``key``, hashing as it streams."""
        ...

    async def discard(self, staged: StagedObject) -> None:
        """Remove a staged object that no command will point to."""
        ...


class HashingReader:
    """A file-like view of ``source`` that hashes, counts and reports what is read through it."""

    def __init__(self, source: BinaryIO, progress: Progress | None, chunk: int) -> None:
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


class DirectoryStaging:
    """A staging directory shared with the workers; a file appears under its name only once it
    is complete and fsynced, so a worker never reads half a file."""

    def __init__(self, root: Path, *, chunk_bytes: int = 1024 * 1024) -> None:
        self.root = root
        self.chunk_bytes = chunk_bytes

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        return await asyncio.to_thread(self._stage, key, source, progress)

    def _stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        target = self.root / key
        partial = target.with_name(target.name + ".partial")
        reader = HashingReader(source, progress, self.chunk_bytes)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out = partial.open("wb")
        except OSError as exc:
            raise Unavailable(
                f"cannot stage in directory {self.root}: {exc.strerror or exc}; "
                "check ARTSTORE_CLIENT_STAGING_DIR (the workers' <data_dir>/staging)"
            ) from exc
        try:
            with out:
                while chunk := reader.read(self.chunk_bytes):
                    try:
                        out.write(chunk)
                    except OSError as exc:
                        raise Unavailable(
                            f"cannot stage in directory {self.root}: {exc.strerror or exc}"
                        ) from exc
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return Staged(FileStagedObject(path=key), reader.size, reader.digest.hexdigest())

    async def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, FileStagedObject):
            await asyncio.to_thread((self.root / staged.path).unlink, missing_ok=True)


class S3Staging:
    """Staged objects in a bucket, written by multipart upload as the source is read."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        prefix: str,
        *,
        part_bytes: int = 8 * 1024 * 1024,
        chunk_bytes: int = 1024 * 1024,
        endpoint: str = "",
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes
        self.chunk_bytes = chunk_bytes

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        name = f"{self.prefix}{key}"
        reader = HashingReader(source, progress, self.chunk_bytes)
        try:
            await asyncio.to_thread(
                self.client.put_object,
                self.bucket,
                name,
                reader,  # type: ignore[arg-type]  # read(size) is all put_object uses
                -1,
                part_size=self.part_bytes,
            )
        except HTTPError as exc:
            # The endpoint did not answer (after the client's retries): nothing was written.
            raise Unavailable(
                f"cannot stage on S3 at {self._where()}: {_reason(exc)}; check "
                "ARTSTORE_S3_ENDPOINT (or ARTSTORE_CLIENT_S3_ENDPOINT) and that S3 is running"
            ) from exc
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.client.remove_object, self.bucket, name)
            if isinstance(exc, MinioException):
                raise Unavailable(f"cannot stage on S3 at {self._where()}: {exc}") from exc
            raise
        staged = S3StagedObject(bucket=self.bucket, key=name)
        return Staged(staged, reader.size, reader.digest.hexdigest())

    async def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, S3StagedObject):
            await asyncio.to_thread(self.client.remove_object, staged.bucket, staged.key)

    def _where(self) -> str:
        return f"{self.endpoint or 'the configured endpoint'} (bucket {self.bucket})"


def _reason(exc: BaseException) -> str:
    """The innermost cause of a urllib3 failure ("Connection refused"), not its retry story."""
    while True:
        inner = exc.__cause__ or getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    return getattr(exc, "strerror", None) or str(exc)
