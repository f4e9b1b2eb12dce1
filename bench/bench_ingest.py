"""End-to-end ingest through the real broker vs. a durable-write baseline, in the same run.

    python -m bench.bench_ingest                      # 2,000 x 4 KB and 1 x 256 MB
    python -m bench.bench_ingest --small 20000 --large 4

The worker path: UploadRequested (with a token) on the broker -> worker verifies, streams the
staged file into the element with sha256, writes the sidecar, journal, fsyncs, publishes
FileStored, commits. Timed from the first publish to the last FileStored received.

The baseline writes the same staged files to another directory with the same durability:
write a temp file, fsync, rename, fsync the directory.

Before each timed phase (the worker's and each baseline run) the page cache is flushed
(``os.sync``), so neither side pays for writing back the other's or the setup's dirty pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artstore.settings import Settings
from artstore.stack import ensure_stack
from auth.testing import TestSigner
from bench.results import BenchResult, report
from events import FileStored, Mode, create_topics
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import FactLog, Producer

CHUNK = 1024 * 1024


def baseline(sources: list[Path], target: Path) -> float:
    """Seconds to copy ``sources`` durably into ``target`` (temp, fsync, rename, fsync dir)."""
    target.mkdir(parents=True, exist_ok=True)
    os.sync()
    started = time.perf_counter()
    dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for source in sources:
            temp = target / f"{source.name}.tmp"
            with open(source, "rb") as src, open(temp, "wb", buffering=0) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                os.fsync(dst.fileno())
            os.replace(temp, target / source.name)
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return time.perf_counter() - started


def mean_baseline(sources: list[Path], target: Path, runs: int = 3) -> float:
    """The baseline is noisy on shared disks: the mean of a few runs into fresh directories."""
    return sum(baseline(sources, target / str(i)) for i in range(runs)) / runs


async def through_the_worker(
    settings: Settings, producer: Producer, facts: FactLog, contents: list[bytes]
) -> tuple[float, list[Path]]:
    commands = [producer.upload(c, f"bench-{i}.bin") for i, c in enumerate(contents)]
    sources = [producer.staging / c.staged.path for c in commands]  # type: ignore[union-attr]
    wanted = {c.file_id for c in commands}
    copies = [settings.data_dir / "sources" / p.name for p in sources]
    copies[0].parent.mkdir(parents=True, exist_ok=True)
    for src, dst in zip(sources, copies, strict=True):
        shutil.copyfile(src, dst)  # the worker removes staged files; the baseline needs them

    def done() -> bool:
        return wanted.issubset(
            e.data.file.file_id for e in facts.events if isinstance(e.data, FileStored)
        )

    os.sync()
    started = time.perf_counter()
    for start in range(0, len(commands), 500):
        await producer.send(*commands[start : start + 500])
    await wait_until(done, 3600, message="every FileStored")
    return time.perf_counter() - started, copies


async def main(args: argparse.Namespace) -> None:
    env = ensure_stack()
    work = Path(tempfile.mkdtemp(prefix="artstore-bench-", dir=args.dir))
    settings = Settings(
        **{**env.as_dict(), "topic_prefix": f"bench{uuid.uuid4().hex[:8]}", "data_dir": work}
    )
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    signer = TestSigner()
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    (work / "staging").mkdir()
    config = WorkerConfig(
        element_id="se-bench",
        mode=Mode.RW,
        root=work / "element",
        jwks_file=jwks,
        token_issuer=signer.issuer,
        capacity_bytes=10**12,
        floor_full_percent=0,
        floor_full_bytes=0,
        batch_max_records=args.batch,
    )
    service = StorageService(settings, config)
    facts = FactLog(settings)
    producer = Producer(settings, signer, work / "staging")
    await facts.start()
    await producer.start()
    await service.start()
    try:
        await wait_until(lambda: service._upload_sub is not None, 60, message="consuming")
        results: list[BenchResult] = []
        if args.small:
            contents = [os.urandom(4096) for _ in range(args.small)]
            seconds, copies = await through_the_worker(settings, producer, facts, contents)
            base = mean_baseline(copies, work / "baseline-small")
            results.append(
                result(
                    f"{args.small:,} x 4 KB files",
                    args.small / seconds,
                    args.small / base,
                    "files/s",
                    target=0.5,
                )
            )
        if args.large:
            size = args.large_mb * 1024 * 1024
            contents = [os.urandom(size) for _ in range(args.large)]
            seconds, copies = await through_the_worker(settings, producer, facts, contents)
            del contents
            base = mean_baseline(copies, work / "baseline-large")
            mb = args.large * args.large_mb
            results.append(
                result(
                    f"{args.large} x {args.large_mb} MB files",
                    mb / seconds,
                    mb / base,
                    "MB/s",
                    target=0.8,
                )
            )
    finally:
        await service.stop()
        await producer.stop()
        await facts.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(results)


def result(case: str, ours: float, theirs: float, unit: str, *, target: float) -> BenchResult:
    """One ingest case against its same-run durable-write baseline."""
    return BenchResult(
        benchmark="ingest",
        measure=f"{case} through the broker and worker",
        value=ours,
        unit=unit,
        baseline="temp, fsync, rename, fsync dir",
        baseline_value=theirs,
        target=f">= {target:.0%} of baseline",
        meets_target=ours / theirs >= target,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="number of 4 KB files")
    parser.add_argument("--large", type=int, default=1, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=256, help="size of a large file in MB")
    parser.add_argument("--batch", type=int, default=500, help="worker batch size")
    parser.add_argument("--dir", default=None, help="where to put the element (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    asyncio.run(main(parser.parse_args()))
