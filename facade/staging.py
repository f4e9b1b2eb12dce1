"""Streaming an upload's body into staging (the claim check), never holding it whole in memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from minio import Minio

from events import FileStagedObject, S3StagedObject, StagedObject
from facade.problems import PayloadTooLarge

PART_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class StagedUpload:
    """Where the bytes wait, and what they were."""

    staged: StagedObject
    size: int
    sha256: str


class Staging(Protocol):
    """Somewhere storage workers can read staged bytes from."""

    async def stage(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> StagedUpload: ...

    async def discard(self, staged: StagedObject) -> None: ...


class _Counter:
    def __init__(self, max_bytes: int) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.max_bytes = max_bytes

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"uploads are limited to {self.max_bytes} bytes")
        self.digest.update(chunk)


class LocalStaging:
    """A shared staging directory (``data_dir/staging``); files appear only when complete."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def stage(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> StagedUpload:
        target = self.root / key
        partial = target.with_name(target.name + ".partial")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        counter = _Counter(max_bytes)
        handle = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                counter.feed(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
        except BaseException:
            handle.close()
            partial.unlink(missing_ok=True)
            raise
        handle.close()
        await asyncio.to_thread(partial.replace, target)
        return StagedUpload(FileStagedObject(path=key), counter.size, counter.digest.hexdigest())

    async def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, FileStagedObject):
            await asyncio.to_thread((self.root / staged.path).unlink, missing_ok=True)


class _QueueReader:
    """A blocking file-like view of chunks an event loop feeds in (for minio's put_object)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]):
        self._loop = loop
        self._queue = queue
        self._buffer = bytearray()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


class S3Staging:
    """Staged objects in a bucket, written with multipart upload from a bounded queue."""

    def __init__(self, client: Minio, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    async def stage(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> StagedUpload:
        name = f"{self.prefix}{key}"
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
        reader = _QueueReader(asyncio.get_running_loop(), queue)
        upload = asyncio.create_task(
            asyncio.to_thread(
                self.client.put_object,
                self.bucket,
                name,
                reader,  # type: ignore[arg-type]  # read(size) is all put_object uses
                -1,
                part_size=PART_SIZE,
            )
        )
        counter = _Counter(max_bytes)
        try:
            async for chunk in chunks:
                counter.feed(chunk)
                await _put_or_fail(queue, chunk, upload)
            await _put_or_fail(queue, None, upload)
            await upload
        except BaseException:
            if not upload.done():
                # Unblock the uploader so its thread ends; the partial object is then removed.
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await upload
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.client.remove_object, self.bucket, name)
            raise
        staged = S3StagedObject(bucket=self.bucket, key=name)
        return StagedUpload(staged, counter.size, counter.digest.hexdigest())

    async def discard(self, staged: StagedObject) -> None:
        if isinstance(staged, S3StagedObject):
            await asyncio.to_thread(self.client.remove_object, staged.bucket, staged.key)


async def _put_or_fail(
    queue: asyncio.Queue[bytes | None], item: bytes | None, upload: asyncio.Task[object]
) -> None:
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait({put, upload}, return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
        upload.result()  # the uploader failed: raise its error
        raise RuntimeError("staging upload stopped early")
