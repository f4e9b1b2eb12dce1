"""Streaming an upload's body into staging (the claim check), never holding it whole in memory.

The body's chunks go through a bounded queue to the claim-check writer (:mod:`events.staging`,
the one the SDK stages with), which writes them on a thread: to the shared staging directory
or, by multipart upload, to the staging bucket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final, Protocol

from events import StagedObject
from events.staging import ClaimCheckWriter, StagedBytes, StagingFailed
from facade.problems import PayloadTooLarge

PART_SIZE = 8 * 1024 * 1024

StagedUpload = StagedBytes
"""Where the bytes wait, and what they were."""


class Staging(Protocol):
    """Somewhere storage workers can read staged bytes from."""

    async def stage(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> StagedUpload: ...

    async def discard(self, staged: StagedObject) -> None: ...


class _Aborted(Exception):
    """The body stopped early: the writer leaves nothing behind."""


class _Abort:
    """Queued when the body stops early."""


_ABORT: Final = _Abort()
Item = bytes | None | _Abort
"""A chunk, the end of the body (None), or :data:`_ABORT`."""


class _QueueReader:
    """A blocking file-like view of chunks an event loop feeds in (None: the end)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Item]):
        self._loop = loop
        self._queue = queue
        self._buffer = bytearray()
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if chunk is None:
                self._done = True
            elif isinstance(chunk, _Abort):
                raise _Aborted("the upload's body stopped early")
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


class StreamStaging:
    """Stages a request body with ``writer``, refusing more than ``max_bytes``."""

    def __init__(self, writer: ClaimCheckWriter) -> None:
        self.writer = writer

    async def stage(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int
    ) -> StagedUpload:
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=8)
        reader = _QueueReader(asyncio.get_running_loop(), queue)
        writing = asyncio.create_task(asyncio.to_thread(self.writer.write, key, reader))
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"uploads are limited to {max_bytes} bytes")
                await _put_or_fail(queue, chunk, writing)
            await _put_or_fail(queue, None, writing)
            return await writing
        except StagingFailed as exc:
            raise exc.cause from None  # the directory's own error, as it was met
        except BaseException:
            if not writing.done():
                # Stop the writer (it removes what it wrote) and let its thread end.
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(_ABORT)
                with contextlib.suppress(Exception):
                    await writing
            raise

    async def discard(self, staged: StagedObject) -> None:
        await asyncio.to_thread(self.writer.discard, staged)


async def _put_or_fail(
    queue: asyncio.Queue[Item], item: bytes | None, writing: asyncio.Task[StagedBytes]
) -> None:
    put = asyncio.ensure_future(queue.put(item))
    await asyncio.wait({put, writing}, return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
        writing.result()  # the writer failed: raise its error
        raise RuntimeError("staging stopped early")
