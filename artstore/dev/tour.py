"""``artstore demo``: a self-checking tour of a running ``artstore dev``, one ✓ or ✗ per check.

Uploads (one large, streamed), English and Russian search, downloads with checksums, an element
moved rw -> ro and back, and a replay of the projection. Every run tags its files with a fresh
tag, so it can run any number of times against the same archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console

from artstore.dev.facade_client import FacadeClient, RequestFailed

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    """A file the tour uploads: its bytes come from a seeded generator, streamed."""

    name: str
    size: int
    description: str
    retention: str = "permanent"
    seed: int = 0
    content_type: str = "text/plain"

    def chunks(self, chunk_size: int = MIB) -> Callable[[], AsyncIterator[bytes]]:
        """A factory of the content as chunks (the same bytes every time)."""

        async def generate() -> AsyncIterator[bytes]:
            rng = random.Random(self.seed)
            left = self.size
            while left > 0:
                n = min(chunk_size, left)
                left -= n
                yield rng.randbytes(n)

        return generate

    def sha256(self) -> str:
        """The checksum of what :meth:`chunks` yields."""
        digest = hashlib.sha256()
        rng = random.Random(self.seed)
        left = self.size
        while left > 0:
            n = min(MIB, left)
            left -= n
            digest.update(rng.randbytes(n))
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


@dataclass
class Tour:
    """The tour against one facade, as one client with admin rights."""

    client: FacadeClient
    console: Console
    large_bytes: int = 64 * MIB
    timeout_s: float = 120.0
    replay: Callable[[], Any] | None = None
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tag = f"demo-{secrets.token_hex(4)}"
        self.english = Sample(
            "quarterly-reports.txt", 40 * 1024, "Quarterly financial reports of the archive", seed=1
        )
        self.russian = Sample("otchety.txt", 30 * 1024, "Годовые отчёты о работе архива", seed=2)  # noqa: RUF001
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
        self.stored: dict[str, dict[str, Any]] = {}

    @contextlib.asynccontextmanager
    async def check(self, name: str) -> AsyncIterator[Check]:
        """Run one check: ✓ when the block finishes, ✗ with the reason when it raises."""
        result = Check(name)
        started = time.perf_counter()
        try:
            yield result
        except (CheckFailed, RequestFailed, TimeoutError, OSError, httpx.HTTPError) as exc:
            result.ok = False
            result.detail = str(exc) or type(exc).__name__
        result.seconds = time.perf_counter() - started
        self.checks.append(result)
        mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        detail = f" — {result.detail}" if result.detail else ""
        self.console.print(f"{mark} {name}{detail} [dim]({result.seconds:.1f} s)[/dim]")

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    async def run(self) -> bool:
        """Every check in order; True when all passed."""
        async with self.check("services ready and an admin token issued") as c:
            await self.client.ready()
            await self.client.authenticate()
            c.detail = f"facade {self.client.facade_url}"
        if not self.ok:
            return False
        await self._uploads()
        await self._searches()
        await self._downloads()
        await self._modes()
        await self._replay()
        return self.ok

    async def _upload(self, sample: Sample) -> dict[str, Any]:
        file_id = await self.client.upload(
            sample.name,
            sample.chunks()(),
            content_type=sample.content_type,
            retention_policy=sample.retention,
            description=sample.description,
            tags=[self.tag, "demo"],
        )
        status = await self.client.wait_upload(file_id, self.timeout_s)
        if status["status"] != "stored":
            raise CheckFailed(f"{sample.name} was {status['status']}: {status}")
        return status

    async def _uploads(self) -> None:
        for sample, wanted in (
            (self.english, "rw"),
            (self.russian, "rw"),
            (self.scratch, "edit"),
        ):
            async with self.check(f"upload {sample.name} ({sample.retention})") as c:
                status = await self._upload(sample)
                element = str(status.get("element_id"))
                modes = await self.client.element_modes()
                if modes.get(element) != wanted:
                    raise CheckFailed(f"stored on {element} ({modes.get(element)}), not {wanted}")
                self.stored[sample.name] = status
                c.detail = f"stored on {element}"
        async with self.check(f"upload {self.large.name} ({self.large.size // MIB} MiB, streamed)"):
            started = time.perf_counter()
            status = await self._upload(self.large)
            self.stored[self.large.name] = status
            rate = self.large.size / MIB / max(time.perf_counter() - started, 1e-6)
            self.console.print(f"  [dim]{rate:.0f} MiB/s end to end[/dim]")

    async def _find(self, query: str, expect: Sample, absent: Sample) -> str:
        deadline = time.monotonic() + self.timeout_s
        while True:
            items = await self.client.search({"q": query, "tag": self.tag})
            names = {item["original_filename"] for item in items}
            if expect.name in names:
                if absent.name in names:
                    raise CheckFailed(f"{query!r} also found {absent.name}")
                return f"found {expect.name} among {len(items)} result(s)"
            if time.monotonic() >= deadline:
                raise CheckFailed(f"{query!r} did not find {expect.name} (got {sorted(names)})")
            await asyncio.sleep(0.3)

    async def _searches(self) -> None:
        async with self.check('search English, stemmed: "report" finds "reports"') as c:
            c.detail = await self._find("report", self.english, self.russian)
        async with self.check('search Russian, stemmed: "отчёт" finds "отчёты"') as c:
            c.detail = await self._find("отчёт", self.russian, self.english)

    async def _downloads(self) -> None:
        for sample in (self.english, self.russian, self.scratch, self.large):
            if sample.name not in self.stored:
                continue
            async with self.check(f"download {sample.name}, sha256 matches") as c:
                file_id = self.stored[sample.name]["file_id"]
                size, digest = await self.client.download_digest(file_id)
                if (size, digest) != (sample.size, sample.sha256()):
                    raise CheckFailed(f"got {size} bytes, sha256 {digest[:12]}...")
                c.detail = f"{size} bytes"

    async def _modes(self) -> None:
        stored = self.stored.get(self.english.name)
        if stored is None:
            return
        element = str(stored["element_id"])
        async with self.check(f"move {element} rw -> ro"):
            await self.client.change_mode(element, "ro", reason="demo: freeze", confirm=False)
            await self.client.wait_mode(element, "ro", self.timeout_s)
        async with self.check(f"a metadata change for a file on {element} is refused") as c:
            status, body = await self.client.update_metadata(
                str(stored["file_id"]), {"description": "changed by the demo"}
            )
            if status != 409:
                raise CheckFailed(f"expected 409 (element_mode), got {status}: {body}")
            c.detail = str(body.get("detail", ""))[:100]
        async with self.check(f"a new upload is not placed on read-only {element}") as c:
            extra = Sample("after-freeze.txt", 2048, "Written while the element was frozen", seed=5)
            placed = await self._upload(extra)
            if placed.get("element_id") == element:
                raise CheckFailed(f"stored on {element}, which is ro")
            c.detail = f"stored on {placed.get('element_id')}"
        async with self.check(f"{element} ro -> rw without confirmation is refused") as c:
            before = await self.client.element(element)
            await self.client.change_mode(element, "rw", reason="demo: thaw", confirm=False)
            refusal = await self.client.wait_mode_rejection(
                element, before.get("last_mode_rejection"), self.timeout_s
            )
            c.detail = str(refusal.get("detail") or refusal.get("reason") or refusal)[:100]
        async with self.check(f"{element} ro -> rw with confirmation"):
            await self.client.change_mode(element, "rw", reason="demo: thaw", confirm=True)
            await self.client.wait_mode(element, "rw", self.timeout_s)

    async def _replay(self) -> None:
        if self.replay is None:
            return
        async with self.check("replay the projection; the files are still found") as c:
            detail = await self.replay()
            await self._find("report", self.english, self.russian)
            c.detail = str(detail)


def summary(checks: list[Check]) -> str:
    """One closing line."""
    failed = [c for c in checks if not c.ok]
    if not failed:
        return f"all {len(checks)} checks passed"
    return f"{len(failed)} of {len(checks)} checks failed: " + ", ".join(c.name for c in failed)
