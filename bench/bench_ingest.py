"""End-to-end ingest through the real broker vs. a durable-write baseline, in the same run.

    python -m bench.bench_ingest                      # 2,000 x 4 KB and 2 x 256 MB
    python -m bench.bench_ingest --small 20000 --large 4
    python -m bench.bench_ingest --trace              # with tracing on (every span recorded)

The worker path: UploadRequested (with a token) on the broker -> worker verifies, streams the
staged file into the element with sha256, writes the sidecar, journal, fsyncs, publishes
FileStored, commits. The commands are published first, as a backlog, while the worker's upload
consumer is paused (producers are other processes in production; here they would share the
worker's process and event loop); the clock starts when the consumer resumes and stops at the
last FileStored received.

The baseline writes the same staged files into one directory with the same durability:
write a temp file, fsync, rename, fsync the directory. One directory for every round, as an
element puts all of an hour's files into one: a fresh directory per round would land in a
fresh ext4 block group each time and measured up to twice as fast here.

The disk of a shared machine is noisy, so each case runs in rounds on fresh files, the worker
first in even rounds and the baseline first in odd ones, and the medians are compared. Before
each timed phase the page cache is flushed (``os.sync``) and the disk is left idle for a few
seconds, so that neither side pays for writing back the other's or the setup's dirty pages,
and neither writes into blocks the other (or the setup) has just freed: on a thin-provisioned
virtual disk with online discard, writes that reuse blocks freed a moment ago run several times
faster than writes to fresh space (seen here: about 2,000 MB/s against about 370 MB/s), which
would make whichever side follows a deletion look fast.

Staged bytes (and the baseline's copies of them) live on another file system than the element,
by default /dev/shm, as a staging volume or bucket would in production. On one ext4 file system
the worker's removal of staged files would slow its own next files down: ext4 passes over
inodes deleted in the last minute or so when it allocates new ones in the same block group,
reading each one's inode table block, and with thousands just deleted a file creation took
about 0.5 ms instead of 20 us here.

``--trace`` runs the producer and the worker with tracing on: every command starts a trace of
its own (published before the clock starts) and every span is recorded (sampler: always on)
and handed to a batch span processor whose exporter discards it, so the figures include making
the spans but not sending them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer

from artstore.stack import ensure_stack
from auth.testing import TestSigner
from base import telemetry
from base.settings import Settings
from bench.results import BenchResult, report
from events import (
    FileStored,
    Mode,
    Outgoing,
    Topic,
    UploadRequested,
    create_topics,
    new_event,
    spec_for,
)
from events.tracing import headers_of
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import consumer_from_beginning, wait_until
from tests.storage_support import Producer

CHUNK = 1024 * 1024
SETTLE_S = 5.0
"""Idle time before each timed phase: longer than ext4's journal commit interval, after which
the discards of freed blocks have gone out."""


async def settle(seconds: float = SETTLE_S) -> None:
    """Write back dirty pages, then leave the disk idle (see the module docstring)."""
    await asyncio.to_thread(os.sync)
    await asyncio.sleep(seconds)


def baseline(sources: list[Path], target: Path) -> float:
    """Seconds to copy ``sources`` durably into ``target`` (temp, fsync, rename, fsync dir)."""
    target.mkdir(parents=True, exist_ok=True)
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


class StoredFiles:
    """Which file ids have a FileStored fact, read cheaply (record key and type header only).

    The observer shares the worker's process and event loop, so it must not cost much itself:
    no decoding of the events, and a completion check that doesn't rescan what it has seen.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = await consumer_from_beginning(
            self.settings, [Topic.FILES], fetch_max_wait_ms=20
        )
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        stored = spec_for(FileStored).type.encode()
        async for record in self._consumer:
            if dict(record.headers).get("ce_type") == stored and record.key is not None:
                self.seen.add(record.key.decode())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()


def stage(
    settings: Settings, producer: Producer, contents: list[bytes]
) -> tuple[list[UploadRequested], list[Path]]:
    """Upload commands for ``contents`` (staged), and copies of the staged files for the baseline
    (the worker removes staged files once they are stored)."""
    commands = [producer.upload(c, f"bench-{i}.bin") for i, c in enumerate(contents)]
    sources = [producer.staging / c.staged.path for c in commands]  # type: ignore[union-attr]
    copies = [producer.staging / "sources" / p.name for p in sources]
    copies[0].parent.mkdir(parents=True, exist_ok=True)
    for src, dst in zip(sources, copies, strict=True):
        shutil.copyfile(src, dst)
    return commands, copies


class UploadGate:
    """Holds the worker's upload consumer paused (``AIOKafkaConsumer.pause``) while a backlog
    of commands is published, and lets it go when the clock starts."""

    def __init__(self, service: StorageService) -> None:
        self.service = service

    def _consumer(self) -> AIOKafkaConsumer:
        uploads = self.service.uploads
        assert uploads is not None, "the worker is not consuming"
        consumer: AIOKafkaConsumer = uploads.subscriber.consumer
        return consumer

    async def close(self) -> None:
        await wait_until(lambda: bool(self._consumer().assignment()), 60, message="assignment")
        consumer = self._consumer()
        consumer.pause(*consumer.assignment())

    def open(self) -> None:
        consumer = self._consumer()
        consumer.resume(*consumer.paused())


async def send(producer: Producer, commands: list[UploadRequested]) -> None:
    """Publish ``commands``; traced, each starts a trace of its own, as the SDK's uploads do."""
    tracer = telemetry.tracer("bench")
    if tracer is None:
        await producer.send(*commands)
        return
    token = producer.token()
    spans = [tracer.start_span("bench.upload") for _ in commands]
    await producer.publisher.publish_many(
        [
            Outgoing(new_event(c, source="test://producer"), token, trace=headers_of(span))
            for c, span in zip(commands, spans, strict=True)
        ]
    )
    for span in spans:
        span.end()


async def through_the_worker(
    producer: Producer, stored: StoredFiles, gate: UploadGate, commands: list[UploadRequested]
) -> float:
    """Seconds from letting the worker consume a published backlog to the last FileStored."""
    wanted = {str(c.file_id) for c in commands}
    await gate.close()
    for start in range(0, len(commands), 500):
        await send(producer, commands[start : start + 500])
    await settle()
    started = time.perf_counter()
    gate.open()
    await wait_until(lambda: len(wanted - stored.seen) == 0, 3600, message="every FileStored")
    return time.perf_counter() - started


async def alternate(
    rounds: int,
    settings: Settings,
    producer: Producer,
    stored: StoredFiles,
    gate: UploadGate,
    contents: Callable[[], list[bytes]],
) -> tuple[float, float]:
    """Median seconds of the worker path and of the baseline, over alternating rounds."""
    ours: list[float] = []
    theirs: list[float] = []

    async def the_baseline(copies: list[Path], round_: int) -> None:
        await settle()
        target = settings.data_dir / "baseline"
        theirs.append(await asyncio.to_thread(baseline, copies, target))

    for round_ in range(rounds):
        commands, copies = stage(settings, producer, contents())
        if round_ % 2:
            await the_baseline(copies, round_)
        ours.append(await through_the_worker(producer, stored, gate, commands))
        if not round_ % 2:
            await the_baseline(copies, round_)
        for copy in copies:
            copy.unlink()
        print(
            f"  round {round_ + 1}: worker {ours[-1]:.3f} s, baseline {theirs[-1]:.3f} s",
            file=sys.stderr,
        )
    return statistics.median(ours), statistics.median(theirs)


@contextlib.contextmanager
def tracing_on(enabled: bool) -> Iterator[None]:
    """Trace what is built inside (see the module docstring); nothing when not ``enabled``."""
    if not enabled:
        yield
        return
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    class Discarded(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(Discarded()))
    try:
        with telemetry.tracing(provider):
            yield
    finally:
        provider.shutdown()


async def main(args: argparse.Namespace) -> None:
    with tracing_on(args.trace):
        await measure(args)


async def measure(args: argparse.Namespace) -> None:
    env = ensure_stack()
    work = Path(tempfile.mkdtemp(prefix="artstore-bench-", dir=args.dir))
    settings = Settings(
        **{**env.as_dict(), "topic_prefix": f"bench{uuid.uuid4().hex[:8]}", "data_dir": work}
    )
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    signer = TestSigner()
    jwks = work / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    staging = Path(tempfile.mkdtemp(prefix="artstore-bench-staging-", dir=args.staging))
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
        staging_dir=staging,
    )
    service = StorageService(settings, config)
    stored = StoredFiles(settings)
    producer = Producer(settings, signer, staging)
    await stored.start()
    await producer.start()
    await service.start()
    try:
        await wait_until(lambda: service.consuming_uploads, 60, message="consuming")
        gate = UploadGate(service)
        results: list[BenchResult] = []
        if args.small:
            ours, theirs = await alternate(
                args.rounds,
                settings,
                producer,
                stored,
                gate,
                lambda: [os.urandom(4096) for _ in range(args.small)],
            )
            results.append(
                result(
                    f"{args.small:,} x 4 KB files",
                    args.small / ours,
                    args.small / theirs,
                    "files/s",
                    target=0.5,
                )
            )
        if args.large:
            size = args.large_mb * 1024 * 1024
            ours, theirs = await alternate(
                args.rounds,
                settings,
                producer,
                stored,
                gate,
                lambda: [os.urandom(size) for _ in range(args.large)],
            )
            mb = args.large * args.large_mb
            results.append(
                result(
                    f"{args.large} x {args.large_mb} MB files",
                    mb / ours,
                    mb / theirs,
                    "MB/s",
                    target=0.8,
                )
            )
    finally:
        await service.stop()
        await producer.stop()
        await stored.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
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
    parser.add_argument("--large", type=int, default=2, help="number of large files")
    parser.add_argument("--large-mb", type=int, default=256, help="size of a large file in MB")
    parser.add_argument("--batch", type=int, default=500, help="worker batch size")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per case")
    parser.add_argument("--dir", default=None, help="where to put the element (default: tmp)")
    parser.add_argument(
        "--staging",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where producers stage bytes: another file system than the element's "
        "(default: /dev/shm where there is one, else tmp)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--trace", action="store_true", help="with tracing on (every span kept)")
    asyncio.run(main(parser.parse_args()))
