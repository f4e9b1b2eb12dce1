"""The fixity auditor, unthrottled, against plain sha256 of the same files, in the same run.

    python -m bench.bench_fixity                     # 2,000 x 64 KB and 16 x 16 MB
    python -m bench.bench_fixity --small 5000 --large 32

The auditor's pass: list the element, plan, read and validate every sidecar, hash every data
file through the element's backend, count, checkpoint its state in the element. The baseline
reads the same data files and hashes them with ``hashlib.sha256``, one after the other, and
does nothing else (no sidecars, no listing). Both read from the page cache (the files are read
once before timing), so the ratio measures the auditor's own cost per file and per byte
rather than the disk. Each case runs in rounds, alternating which side goes first; medians
are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import BenchResult, report
from storage_workers.backends import LocalStorage
from storage_workers.catalogue import Catalogue
from storage_workers.fixity import (
    Announcer,
    Auditor,
    FixityState,
    PassRunner,
    StateStore,
    plan_items,
)
from tests.integration.storage.fixity_faults import store_files_of_size

ROUNDS = 3
TARGET = 0.8


def plain_sha256(paths: Sequence[Path]) -> int:
    """Hash every file; returns the bytes read."""
    total = 0
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                total += len(chunk)
        digest.hexdigest()
    return total


async def audit(backend: LocalStorage, element_id: str, catalogue: Catalogue) -> int:
    """One unthrottled pass; returns the bytes it hashed."""

    async def publish(_facts: Any) -> None:
        return None

    runner = PassRunner(
        Auditor(backend, element_id, catalogue.get),
        Announcer(element_id, "bench"),
        publish,
        store=StateStore(backend),
        clock=lambda: datetime.now(UTC),
    )
    try:
        items = await asyncio.to_thread(
            lambda: plan_items(backend.list_keys(), catalogue.entries())
        )
        checked = await runner.run(items, FixityState())
    finally:
        runner.close()
    assert (checked.failed, checked.unreadable) == (0, 0), checked
    return checked.bytes_checked


def run_case(name: str, count: int, size: int, workdir: Path) -> list[BenchResult]:
    root = workdir / name
    backend = LocalStorage(root)
    sidecars = store_files_of_size(backend, "se-bench", count, size)
    catalogue = Catalogue.load(backend, "se-bench")
    paths = [root / s.storage_path for s in sidecars]
    plain_sha256(paths)  # warm the page cache for both sides
    ours: list[float] = []
    base: list[float] = []
    total = 0
    for round_ in range(ROUNDS):
        order = ["auditor", "baseline"] if round_ % 2 == 0 else ["baseline", "auditor"]
        for side in order:
            started = time.perf_counter()
            if side == "auditor":
                total = asyncio.run(audit(backend, "se-bench", catalogue))
                ours.append(time.perf_counter() - started)
            else:
                plain_sha256(paths)
                base.append(time.perf_counter() - started)
    shutil.rmtree(root)
    t_ours, t_base = statistics.median(ours), statistics.median(base)
    mb = total / 1e6
    label = f"{count} x {size // 1024} KB"
    files_ratio = (count / t_ours) / (count / t_base)
    return [
        BenchResult(
            "fixity",
            f"auditor files/s ({label})",
            count / t_ours,
            "files/s",
            "plain sha256",
            count / t_base,
            f">= {TARGET:.0%} of baseline",
            files_ratio >= TARGET,
        ),
        BenchResult(
            "fixity",
            f"auditor MB/s ({label})",
            mb / t_ours,
            "MB/s",
            "plain sha256",
            mb / t_base,
            f">= {TARGET:.0%} of baseline",
            files_ratio >= TARGET,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="files of 64 KB")
    parser.add_argument("--large", type=int, default=16, help="files of 16 MB")
    parser.add_argument("--dir", type=Path, default=None, help="where the element lives")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-fixity-", dir=args.dir))
    try:
        results = run_case("small", args.small, 64 * 1024, workdir)
        results += run_case("large", args.large, 16 * 1024 * 1024, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    print(f"cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
