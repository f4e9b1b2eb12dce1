"""Staging: the claim check. The producer leaves the bytes where workers read them, hashing
them while they stream (never the whole file in memory), before any command is published.

The writing is :mod:`events.staging`'s (the facade stages with it too); here it runs on a
thread and its failures become the SDK's :class:`~producers.errors.Unavailable`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import BinaryIO, Protocol

from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from events import StagedObject
from events.staging import (
    DirectoryWriter,
    HashingReader,
    Progress,
    S3Writer,
    StagedBytes,
    StagingFailed,
)
from producers.errors import Unavailable

__all__ = ["DirectoryStaging", "HashingReader", "Progress", "S3Staging", "Staged", "Staging"]

Staged = StagedBytes
"""Where the bytes wait, how many there were and their sha256."""


class Staging(Protocol):
    """Somewhere storage workers can read staged bytes from."""

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        """Copy ``source`` to ``key``, hashing as it streams."""
        ...

    async def discard(self, staged: StagedObject) -> None:
        """Remove a staged object that no command will point to."""
        ...


class DirectoryStaging:
    """A staging directory shared with the workers (see :class:`events.staging.DirectoryWriter`)."""

    def __init__(self, root: Path, *, chunk_bytes: int = 1024 * 1024) -> None:
        self.root = root
        self.chunk_bytes = chunk_bytes
        self.writer = DirectoryWriter(root, chunk_bytes=chunk_bytes)

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        return await asyncio.to_thread(self._stage, key, source, progress)

    def _stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        try:
            return self.writer.write(key, source, progress)
        except StagingFailed as exc:
            hint = (
                "; check ARTSTORE_CLIENT_STAGING_DIR (the workers' <data_dir>/staging)"
                if exc.opening
                else ""
            )
            raise Unavailable(f"{exc}{hint}") from exc.cause

    async def discard(self, staged: StagedObject) -> None:
        await asyncio.to_thread(self.writer.discard, staged)


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
        self.writer = S3Writer(
            client, bucket, prefix, part_bytes=part_bytes, chunk_bytes=chunk_bytes
        )

    async def stage(self, key: str, source: BinaryIO, progress: Progress | None) -> Staged:
        try:
            return await asyncio.to_thread(self.writer.write, key, source, progress)
        except HTTPError as exc:
            # The endpoint did not answer (after the client's retries): nothing was written.
            raise Unavailable(
                f"cannot stage on S3 at {self._where()}: {_reason(exc)}; check "
                "ARTSTORE_S3_ENDPOINT (or ARTSTORE_CLIENT_S3_ENDPOINT) and that S3 is running"
            ) from exc
        except MinioException as exc:
            raise Unavailable(f"cannot stage on S3 at {self._where()}: {exc}") from exc

    async def discard(self, staged: StagedObject) -> None:
        await asyncio.to_thread(self.writer.discard, staged)

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
