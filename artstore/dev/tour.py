"""``artstore demo``: a self-checking tour of a running ``artstore dev``, one ✓ or ✗ per check.

Everything goes through the producer SDK, as an application would: uploads (one large,
generated and streamed), English and Russian search, downloads verified against the demo's own
checksums, every rw element moved to ro (an upload is then refused) and back, and a replay of
the projection. Each run tags its files with a fresh tag, so it can run again and again against
the same archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import random
import secrets
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import httpx
from rich.console import Console

from producers import ArtStoreClient, ArtStoreError, Rejected, StoredFile

MIB = 1024 * 1024


def brief(text: str, width: int = 120) -> str:
    """``text`` in at most ``width`` characters, cut between words."""
    return textwrap.shorten(text, width, placeholder=" …")


class GeneratedStream(io.RawIOBase):
    """``size`` seeded pseudo-random bytes, produced as they are read (never held whole)."""

    def __init__(self, size: int, seed: int) -> None:
        self._rng = random.Random(seed)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        buffer[:n] = self._rng.randbytes(n)
        self._left -= n
        return n


class DigestSink(io.RawIOBase):
    """A writable stream that keeps only the size and sha256 of what it was given."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("only a restart from 0")
        self.digest = hashlib.sha256()
        self.size = 0
        return 0

    def truncate(self, size: int | None = None) -> int:
        return 0


@dataclass(frozen=True)
class Sample:
    """A file the tour uploads; its bytes come from a seeded generator."""

    name: str
    size: int
    description: str
    retention: str = "permanent"
    seed: int = 0
    content_type: str = "text/plain"

    def stream(self) -> io.BufferedReader:
        return io.BufferedReader(GeneratedStream(self.size, self.seed), buffer_size=MIB)

    def sha256(self) -> str:
        """The checksum of what :meth:`stream` yields."""
        digest = hashlib.sha256()
        stream = self.stream()
        while chunk := stream.read(MIB):
            digest.update(chunk)
        return digest.hexdigest()


@dataclass
class Check:
    """One line of the tour's report."""

    name: str
    ok: bool = True
    detail: str = ""
    seconds: float = 0.0


class CheckFailed(Exception):
    """A check found something off; the message says what."""


#: What a check may run into that means "this check failed", not "the demo has a bug".
EXPECTED_FAILURES = (CheckFailed, ArtStoreError, TimeoutError, OSError, httpx.HTTPError)


@dataclass
class Tour:
    """The tour against one deployment, as one client with admin rights."""

    client: ArtStoreClient
    console: Console
    large_bytes: int = 64 * MIB
    timeout_s: float = 120.0
    replay: Callable[[], Awaitable[str]] | None = None
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tag = f"demo-{secrets.token_hex(4)}"
        self.english = Sample(
            "quarterly-reports.txt", 40 * 1024, "Quarterly financial reports of the archive", seed=1
        )
        self.russian = Sample(
            "otchety.txt",
            30 * 1024,
            "Годовые отчёты о работе архива",  # noqa: RUF001 - Russian on purpose
            seed=2,
        )
        self.scratch = Sample(
            "scratch-notes.txt", 4 * 1024, "Temporary scratch notes", "temporary", seed=3
        )
        self.large = Sample(
            "large-scan.bin",
            self.large_bytes,
            "A large scanned volume",
            seed=4,
            content_type="application/octet-stream",
        )
        self.stored: dict[str, StoredFile] = {}

    @contextlib.asynccontextmanager
    async def check(self, name: str) -> AsyncIterator[Check]:
        """Run one check: ✓ when the block finishes, ✗ with the reason when it raises."""
        result = Check(name)
        started = time.perf_counter()
        try:
            yield result
        except EXPECTED_FAILURES as exc:
            result.ok = False
            result.detail = str(exc) or type(exc).__name__
        result.seconds = time.perf_counter() - started
        self.checks.append(result)
        mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        detail = f" — {result.detail}" if result.detail else ""
        self.console.print(
            f"{mark} {name}{detail} [dim]({result.seconds:.1f} s)[/dim]", highlight=False
        )

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    async def run(self) -> bool:
        """Every check in order; True when all passed."""
        async with self.check("an admin token is issued and the elements are listed") as c:
            await self.client.token()
            modes = await self._modes()
            c.detail = ", ".join(f"{e} ({m})" for e, m in sorted(modes.items()))
        if not self.ok:
            return False
        await self._uploads()
        await self._searches()
        await self._downloads()
        await self._freeze()
        await self._replay()
        return self.ok

    # -- steps ---------------------------------------------------------------------------------

    async def _upload(self, sample: Sample) -> StoredFile:
        handle = await self.client.upload(
            sample.stream(),
            filename=sample.name,
            content_type=sample.content_type,
            retention_policy=sample.retention,
            ttl_days=30 if sample.retention == "temporary" else None,
            description=sample.description,
            tags=[self.tag, "demo"],
        )
        return await handle.wait(timeout=self.timeout_s)

    async def _uploads(self) -> None:
        for sample, wanted in ((self.english, "rw"), (self.russian, "rw"), (self.scratch, "edit")):
            async with self.check(f"upload {sample.name} ({sample.retention})") as c:
                stored = await self._upload(sample)
                mode = (await self._modes()).get(stored.element_id)
                if mode != wanted:
                    raise CheckFailed(f"stored on {stored.element_id} ({mode}), not {wanted}")
                self.stored[sample.name] = stored
                c.detail = f"stored on {stored.element_id}"
        size = f"{self.large.size / MIB:g} MiB"
        async with self.check(f"upload {self.large.name} ({size}, generated and streamed)") as c:
            started = time.perf_counter()
            self.stored[self.large.name] = await self._upload(self.large)
            rate = self.large.size / MIB / max(time.perf_counter() - started, 1e-6)
            c.detail = f"stored on {self.stored[self.large.name].element_id}, {rate:.0f} MiB/s"

    async def _find(self, query: str, expect: Sample, absent: Sample) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            page = await self.client.search(query, tag=self.tag)
            names = {item["original_filename"] for item in page.items}
            if expect.name in names:
                if absent.name in names:
                    raise CheckFailed(f"{query!r} also found {absent.name}")
                return f"found {expect.name} among {len(page.items)} result(s)"
            if time.monotonic() >= deadline:
                raise CheckFailed(f"{query!r} did not find {expect.name} (got {sorted(names)})")
            await asyncio.sleep(0.3)

    async def _searches(self) -> None:
        async with self.check('search in English, stemmed: "report" finds "reports"') as c:
            c.detail = await self._find("report", self.english, self.russian)
        async with self.check('search in Russian, stemmed: "отчёт" finds "отчёты"') as c:
            c.detail = await self._find("отчёт", self.russian, self.english)

    async def _downloads(self) -> None:
        for sample in (self.english, self.russian, self.scratch, self.large):
            stored = self.stored.get(sample.name)
            if stored is None:
                continue
            async with self.check(f"download {sample.name}; size and sha256 match") as c:
                sink = DigestSink()
                await self.client.download(stored.file_id, cast(BinaryIO, sink))
                got = (sink.size, sink.digest.hexdigest())
                if got != (sample.size, sample.sha256()):
                    raise CheckFailed(f"got {got[0]} bytes, sha256 {got[1][:12]}...")
                c.detail = f"{sink.size} bytes from {stored.element_id}"

    async def _freeze(self) -> None:
        """Every rw element to ro: writes to them and new permanent uploads are refused."""
        stored = self.stored.get(self.english.name)
        if stored is None:
            return
        writable = sorted(e for e, m in (await self._modes()).items() if m == "rw")
        async with self.check(f"move {', '.join(writable)} rw -> ro"):
            for element in writable:
                await self.client.change_mode(element, "ro", reason="demo: freeze")
            for element in writable:
                await self._wait_mode(element, "ro")
        async with self.check(f"a metadata change for a file on {stored.element_id} is refused"):
            try:
                await self.client.update_metadata(stored.file_id, description="changed")
            except Rejected as exc:
                if exc.reason != "element_mode":
                    raise
            else:
                raise CheckFailed("the change was accepted")
        async with self.check("a permanent upload is refused: no rw element left") as c:
            extra = Sample("after-freeze.txt", 2048, "Written while frozen", seed=5)
            try:
                await self._upload(extra)
            except Rejected as exc:
                if exc.reason != "element_mode":
                    raise
                c.detail = brief(str(exc))
            else:
                raise CheckFailed("the upload was stored")
        first = writable[0]
        async with self.check(f"{first} ro -> rw without confirmation is refused") as c:
            before = (await self._element(first)).get("last_mode_rejection")
            await self.client.change_mode(first, "rw", reason="demo: thaw")
            refusal = await self._wait_rejection(first, before)
            c.detail = textwrap.shorten(
                str(refusal.get("reason") or refusal), 120, placeholder=" …"
            )
        async with self.check(f"{', '.join(writable)} ro -> rw with confirmation"):
            for element in writable:
                await self.client.change_mode(element, "rw", reason="demo: thaw", confirm=True)
            for element in writable:
                await self._wait_mode(element, "rw")

    async def _replay(self) -> None:
        if self.replay is None:
            return
        async with self.check("replay the projection; the files are still found") as c:
            detail = await self.replay()
            await self._find("report", self.english, self.russian)
            await self._find("отчёт", self.russian, self.english)
            c.detail = detail

    # -- polling -------------------------------------------------------------------------------

    async def _modes(self) -> dict[str, str]:
        return {e["element_id"]: e["mode"] for e in await self.client.elements()}

    async def _element(self, element_id: str) -> dict[str, Any]:
        for item in await self.client.elements():
            if item["element_id"] == element_id:
                return item
        raise CheckFailed(f"element {element_id} is not listed")

    async def _wait_mode(self, element_id: str, mode: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while (current := (await self._element(element_id))["mode"]) != mode:
            if time.monotonic() >= deadline:
                raise CheckFailed(f"{element_id} is still {current} after {self.timeout_s:g} s")
            await asyncio.sleep(0.2)

    async def _wait_rejection(self, element_id: str, previous: Any) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            rejection = (await self._element(element_id)).get("last_mode_rejection")
            if rejection and rejection != previous:
                return dict(rejection)
            if time.monotonic() >= deadline:
                raise CheckFailed(f"no refusal from {element_id} after {self.timeout_s:g} s")
            await asyncio.sleep(0.2)


def summary(checks: list[Check]) -> str:
    """One closing line."""
    failed = [c for c in checks if not c.ok]
    if not failed:
        return f"all {len(checks)} checks passed"
    return f"{len(failed)} of {len(checks)} checks failed: " + ", ".join(c.name for c in failed)
