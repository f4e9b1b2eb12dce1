"""Downloads that resume with HTTP Range after an interruption and verify sha256 at the end."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from events import download_filename
from producers.errors import ChecksumMismatch, Unavailable
from producers.http import AuthorizedHttp
from producers.models import DownloadResult

DownloadProgress = Callable[[int, int], None]
"""Called with (bytes on hand, total size): once at the start, then after every chunk."""

PART_SUFFIX = ".part"


@dataclass
class _Sink:
    """Where the bytes go: the ``.part`` file beside the target, or a caller's stream."""

    stream: BinaryIO
    part: Path | None

    def write(self, chunk: bytes) -> None:
        self.stream.write(chunk)

    def restart(self) -> None:
        """The server sent the whole content (not a range): start over."""
        self.stream.seek(0)
        self.stream.truncate()


def local_filename(original: object, fallback: str) -> str:
    """A name to save a download under (:func:`events.download_filename`): the last segment
    of the original name without control or bidirectional characters, or ``fallback`` (the
    file id) when nothing safe is left (``..``, ``.``, empty)."""
    return download_filename(original, fallback)


def _hash_existing(part: Path, digest: Any, chunk: int) -> int:
    size = 0
    with part.open("rb") as existing:
        while data := existing.read(chunk):
            digest.update(data)
            size += len(data)
    return size


async def download(
    http: AuthorizedHttp,
    file_id: UUID,
    sidecar: dict[str, Any],
    to: Path | BinaryIO,
    *,
    progress: DownloadProgress | None = None,
    retries: int = 3,
    chunk_bytes: int = 1024 * 1024,
) -> DownloadResult:
    """Fetch a file's content to ``to`` (a file path or a writable binary stream).

    For a path the bytes go to ``<path>.part`` first: an interrupted download leaves it, and the
    next call hashes what it holds and asks only for the rest (``Range`` with ``If-Range`` on
    the content's ETag, so a changed file is sent whole instead). A transport error mid-stream
    resumes the same way, up to ``retries`` times. Only a complete file whose sha256 matches
    the sidecar's is renamed to ``path``; a mismatch removes the part file.
    """
    size = int(sidecar["file_size"])
    checksum = str(sidecar["checksum"])
    digest = hashlib.sha256()
    target: Path | None = to if isinstance(to, Path) else None
    offset = 0
    if target is not None:
        part = target.with_name(target.name + PART_SUFFIX)
        await asyncio.to_thread(part.parent.mkdir, parents=True, exist_ok=True)
        if part.exists() and part.stat().st_size <= size:
            offset = await asyncio.to_thread(_hash_existing, part, digest, chunk_bytes)
        stream: BinaryIO = await asyncio.to_thread(part.open, "ab" if offset else "wb")
        sink = _Sink(stream, part)
    else:
        assert not isinstance(to, Path)
        sink = _Sink(to, None)
    resumed_from = offset
    received = 0
    try:
        if progress is not None:
            progress(offset, size)
        failures = 0
        while offset < size:
            headers = {"If-Range": f'"{checksum}"', "Range": f"bytes={offset}-"} if offset else {}
            try:
                async with http.stream(
                    f"/api/v1/files/{file_id}/content",
                    what=f"download of {file_id}",
                    headers=headers,
                ) as response:
                    if offset and response.status_code == 200:
                        await asyncio.to_thread(sink.restart)
                        digest, offset, resumed_from = hashlib.sha256(), 0, 0
                    async for chunk in response.aiter_bytes(chunk_bytes):
                        await asyncio.to_thread(sink.write, chunk)
                        digest.update(chunk)
                        offset += len(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress(offset, size)
            except Unavailable:
                failures += 1
                if failures > retries:
                    where = f"; the partial download is kept at {sink.part}" if sink.part else ""
                    raise Unavailable(
                        f"download of {file_id} interrupted {failures} times at byte {offset}"
                        f"{where}: run it again to resume"
                    ) from None
    finally:
        if sink.part is not None:
            await asyncio.to_thread(sink.stream.close)
    actual = digest.hexdigest()
    if offset != size or actual != checksum:
        if sink.part is not None:
            await asyncio.to_thread(sink.part.unlink, missing_ok=True)
        raise ChecksumMismatch(
            f"download of {file_id}: got {offset} bytes with sha256 {actual}, expected {size} "
            f"bytes with sha256 {checksum}"
        )
    if target is not None and sink.part is not None:
        await asyncio.to_thread(sink.part.replace, target)
    return DownloadResult(file_id, target, size, actual, resumed_from, received)
