"""The fixity auditor, unthrottled, against plain sha256 of the same files, in the same run.

    python -m bench.bench_fixity                     # 2,000 x 64 KB and 16 x 16 MB
    python -m bench.bench_fixity --small 5000 --large 32 --rounds 9

The auditor's pass: list the element, plan, read and validate every sidecar, hash every data
file through the element's backend, count, checkpoint its state in the element. The baseline
reads the same data files and hashes them with ``hashlib.sha256``, one after the other, in one
process, and does nothing else (no sidecars, no listing). Both read from the page cache (the
files are read once before timing), so the ratio measures the auditor's own cost per file and
per byte rather than the disk.

The auditor runs as it does by default: on a local element it lends small files to helper
processes (one fewer than the cores; they are started once per process, here by an untimed
pass before timing, as a worker starts them once for its life); large files are hashed on
several threads of its own process. The output says how many processes the auditor used, and
where it used more than one, the auditor restricted to its own process is measured in the same
rounds and reported too. Each case runs in rounds, rotating which side goes first; medians are
compared.
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
from storage_workers.fixity.processes import default_processes
from tests.integration.storage.fixity_faults import store_files_of_size

ROUNDS = 9
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


async def audit(
    backend: LocalStorage, element_id: str, catalogue: Catalogue, processes: int
) -> tuple[int, int]:
    """One unthrottled pass with ``processes`` helpers; returns the bytes it hashed and the
    files the helpers proved sound."""

    async def publish(_facts: Any) -> None:
        return None

    runner = PassRunner(
        Auditor(backend, element_id, catalogue.get),
        Announcer(element_id, "bench"),
        publish,
        store=StateStore(backend),
        clock=lambda: datetime.now(UTC),
        processes=processes,
    )
    try:
        items = await asyncio.to_thread(
            lambda: plan_items(backend.list_keys(), catalogue.entries())
        )
        checked = await runner.run(items, FixityState())
    finally:
        runner.close()
    assert (checked.failed, checked.unreadable) == (0, 0), checked
    return checked.bytes_checked, runner.helped


def run_case(
    name: str, count: int, size: int, workdir: Path, rounds: int, helpers: int
) -> list[BenchResult]:
    root = workdir / name
    backend = LocalStorage(root)
    sidecars = store_files_of_size(backend, "se-bench", count, size)
    catalogue = Catalogue.load(backend, "se-bench")
    paths = [root / s.storage_path for s in sidecars]
    plain_sha256(paths)  # warm the page cache for both sides
    asyncio.run(audit(backend, "se-bench", catalogue, helpers))  # start the helpers
    sides = ["auditor", "auditor, 1 process", "baseline"]
    times: dict[str, list[float]] = {side: [] for side in sides}
    total = helped = 0
    for round_ in range(rounds):
        for side in sides[round_ % 3 :] + sides[: round_ % 3]:
            started = time.perf_counter()
            if side == "baseline":
                plain_sha256(paths)
            else:
                processes = helpers if side == "auditor" else 0
                total, lent = asyncio.run(audit(backend, "se-bench", catalogue, processes))
                if side == "auditor":
                    helped = max(helped, lent)
            times[side].append(time.perf_counter() - started)
    shutil.rmtree(root)
    t_base = statistics.median(times["baseline"])
    mb = total / 1e6
    label = f"{count} x {size // 1024} KB"
    used = 1 + helpers if helped else 1
    print(
        f"{label}: the auditor ran in {used} process{'es' if used > 1 else ''}"
        + (f" (its helpers proved up to {helped} of {count} files sound)" if helped else "")
        + f"; the baseline in 1; medians of {rounds} rounds"
    )
    results: list[BenchResult] = []
    sides_used = [("auditor", used)] + ([("auditor, 1 process", 1)] if used > 1 else [])
    for side, processes in sides_used:
        t_ours = statistics.median(times[side])
        files_ratio = t_base / t_ours
        scope = f"{label}, {processes} process{'es' if processes > 1 else ''}"
        headline = side == "auditor"
        target = f">= {TARGET:.0%} of baseline" if headline else None
        meets = files_ratio >= TARGET if headline else None
        results += [
            BenchResult(
                "fixity",
                f"auditor files/s ({scope})",
                count / t_ours,
                "files/s",
                "plain sha256",
                count / t_base,
                target,
                meets,
            ),
            BenchResult(
                "fixity",
                f"auditor MB/s ({scope})",
                mb / t_ours,
                "MB/s",
                "plain sha256",
                mb / t_base,
                target,
                meets,
            ),
        ]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="files of 64 KB")
    parser.add_argument("--large", type=int, default=16, help="files of 16 MB")
    parser.add_argument("--dir", type=Path, default=None, help="where the element lives")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each case")
    parser.add_argument(
        "--helpers", type=int, default=None, help="helper processes (default: cores - 1)"
    )
    args = parser.parse_args()
    helpers = default_processes() if args.helpers is None else args.helpers
    workdir = Path(tempfile.mkdtemp(prefix="bench-fixity-", dir=args.dir))
    try:
        results = run_case("small", args.small, 64 * 1024, workdir, args.rounds, helpers)
        results += run_case("large", args.large, 16 * 1024 * 1024, workdir, args.rounds, helpers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    print(f"cpu count {os.cpu_count()}")


if __name__ == "__main__":
    main()
