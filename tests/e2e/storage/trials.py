"""Kill-and-restart trials of the whole upload path, as an operator would try it.

A trial runs its own durable broker, of the kind the run tests (Apache Kafka with its log in
the trial's directory, or Tansu on the stack's S3 in a bucket of its own), so it can be restarted
without disturbing anything else (a trial that restarts PostgreSQL runs a cluster of its own
too); two rw storage workers as processes (``se-a`` fills first, ``se-b`` stands by); the
projector in this process; and publishes uploads in waves while it disrupts something. Then
it checks, for every accepted upload (one the broker acknowledged): exactly one stored copy on
exactly one element, its FileStored fact naming that element, its index row and its status; and
for the projector: every partition's applied count equals its position. :class:`TrialReport`
counts what happened (the soak run prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from artstore.stack import KafkaBroker, StackEnv, apache_kafka, processes
from artstore.stack.lifecycle import KAFKA_BROKER_VARIABLE
from artstore.stack.probes import LOOPBACK, free_ports, kafka_brokers
from artstore.stack.tansu import tansu_binary
from auth.testing import TestSigner
from base.settings import Settings
from consumers import ProjectorSettings, migrate
from events import FileStored, Topic, UploadRequested, create_topics
from tests.e2e.storage.diagnosis import explain, projector_log, tail
from tests.e2e.storage.own_database import OwnDatabase
from tests.e2e.storage.worker_process import WorkerProcess
from tests.helpers import read_events, s3_client, wait_until
from tests.integration.query.support import fetch, running_projector
from tests.storage_support import Producer

FILE = 2000
"""Bytes per upload."""
OUTCOME_DEADLINE_S = 300.0
"""Longest a trial waits for every accepted upload to have an outcome in the index."""


def uploads_per_trial() -> int:
    """Uploads per trial: a few dozen in ``make test``, more in ``make soak``."""
    return int(os.environ.get("ARTSTORE_TRIAL_UPLOADS", "40"))


class OwnBroker:
    """A durable broker of the trial's own, restartable on the same port: of the kind the run
    tests (``ARTSTORE_STACK_KAFKA``): Apache Kafka with its log in the trial's directory, or
    Tansu on the stack's S3 in a bucket of its own."""

    def __init__(self, stack: StackEnv, directory: Path) -> None:
        self.stack = stack
        self.directory = directory
        self.kind = KafkaBroker(os.environ.get(KAFKA_BROKER_VARIABLE, KafkaBroker.TANSU.value))
        self.port, self.controller_port = free_ports(2)
        self.bucket = f"tansu-{secrets.token_hex(6)}"
        self.pid: int | None = None
        self.program = "java" if self.kind is KafkaBroker.APACHE else "tansu"
        self.restarts = 0

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        if self.kind is KafkaBroker.APACHE:
            record = await asyncio.to_thread(
                apache_kafka.start, self.directory, (self.port, self.controller_port)
            )
            self.pid = record.pid
        else:
            self._start_tansu()

        def ready() -> bool:
            brokers = kafka_brokers(LOOPBACK, self.port)
            return brokers is not None and (LOOPBACK, self.port) in brokers

        await wait_until(lambda: asyncio.to_thread(ready), 60, message="own broker ready")

    def _start_tansu(self) -> None:
        client = s3_client(self.stack)
        if not client.bucket_exists(self.bucket):
            client.make_bucket(self.bucket)
        url = f"tcp://{LOOPBACK}:{self.port}"
        env = {
            **os.environ,
            "AWS_ENDPOINT": f"http://{self.stack.s3_endpoint}",
            "AWS_ACCESS_KEY_ID": self.stack.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": self.stack.s3_secret_key,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": self.stack.s3_region,
        }
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            f"s3://{self.bucket}/",
        ]
        self.pid = processes.launch(argv, log=self.directory / "tansu.log", env=env)

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.pid is not None:
            await asyncio.to_thread(processes.stop, self.pid, program=self.program, sig=sig)
            self.pid = None

    async def restart(self, sig: int) -> None:
        await self.stop(sig)
        await self.start()
        self.restarts += 1

    def remove(self) -> None:
        if self.kind is KafkaBroker.APACHE:
            shutil.rmtree(self.directory / "apache-kafka", ignore_errors=True)
            return
        client = s3_client(self.stack)
        with contextlib.suppress(Exception):
            for item in client.list_objects(self.bucket, recursive=True):
                if item.object_name is not None:
                    client.remove_object(self.bucket, item.object_name)
            client.remove_bucket(self.bucket)


@dataclass
class TrialReport:
    """What one trial did and found."""

    scenario: str
    uploads: int = 0
    kills: int = 0
    broker_restarts: int = 0
    database_restarts: int = 0
    stored: int = 0
    lost: int = 0
    """Accepted uploads without a stored copy, a fact, an index row or a final status."""
    duplicated: int = 0
    """Uploads stored on more than one element (or twice on one)."""
    duplicate_facts: int = 0
    """FileStored facts beyond the first per upload."""
    absent_offsets: int = 0
    """Offsets the projector went past without a record, on the broker's proof."""
    by_element: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


class Trial:
    """Everything one scenario runs; see the module docstring."""

    def __init__(
        self,
        scenario: str,
        settings: Settings,
        stack: StackEnv,
        signer: TestSigner,
        jwks_file: Path,
        directory: Path,
    ) -> None:
        self.report = TrialReport(scenario)
        self.broker = OwnBroker(stack, directory)
        self.settings = settings.model_copy(
            update={
                "kafka_bootstrap": self.broker.bootstrap,
                "topic_prefix": f"k{secrets.token_hex(5)}.artstore",
                "data_dir": directory,
            }
        )
        self.signer = signer
        self.jwks_file = jwks_file
        self.directory = directory
        self.workers: dict[str, WorkerProcess] = {}
        self.producer: Producer | None = None
        self.accepted: list[UploadRequested] = []
        self.database: OwnDatabase | None = None
        self.projector: asyncio.Task[None] | None = None

    def own_database(self) -> OwnDatabase:
        """Use a PostgreSQL cluster of the trial's own (call before adding workers): the index,
        the projector's positions and the workers' upload claims then live where the trial can
        restart them."""
        self.database = OwnDatabase(self.directory / "postgres")
        self.settings = self.settings.model_copy(update={"database_url": self.database.url})
        return self.database

    def element_root(self, element_id: str) -> Path:
        return self.directory / "elements" / element_id

    def add_worker(self, element_id: str, priority: int, capacity_files: int | None) -> None:
        capacity = (capacity_files + 2) * FILE if capacity_files else 10**9
        worker = WorkerProcess(
            self.settings,
            self.jwks_file,
            self.signer.issuer,
            element_id=element_id,
            mode="rw",
            priority=priority,
            root=self.element_root(element_id),
            capacity_bytes=capacity,
            floor_full_percent=0,
            floor_full_bytes=2 * FILE,
            floor_critical_percent=0,
            floor_critical_bytes=4 * FILE,
            floor_warning_percent=0,
            floor_warning_bytes=0,
            heartbeat_interval_s=0.5,
            retry_backoff_s=0.1,
        )
        worker.log = self.directory / f"{element_id}.log"
        # Joins, rebalances and placement are logged at INFO: a failed trial shows them.
        worker.env["ARTSTORE_LOG_LEVEL"] = "INFO"
        self.workers[element_id] = worker

    async def start_worker(self, element_id: str) -> None:
        worker = self.workers[element_id]
        worker.start()
        await wait_until(worker.ready_async, 90, message=f"{element_id} ready")

    def kill_worker(self, element_id: str) -> None:
        self.workers[element_id].kill()
        self.report.kills += 1

    async def until_consuming(self, element_id: str) -> None:
        worker = self.workers[element_id]
        await wait_until(
            lambda: asyncio.to_thread(worker.consuming_uploads),
            90,
            message=f"{element_id} consuming uploads",
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Trial]:
        """The broker, topics, projector, producer and workers, until the block ends; then
        wait for every outcome and :meth:`check` (failing the block with what is wrong)."""
        await self.broker.start()
        try:
            if self.database is not None:
                await self.database.start()
            await create_topics(self.settings.kafka_bootstrap, self.settings.topic_names())
            await migrate(self.settings.database_url)
            projector = ProjectorSettings(
                group_id=f"{self.settings.topic_prefix}.projection",
                cache_generation_key=f"{self.settings.topic_prefix}:generation",
                batch_size=200,
            )
            staging = self.directory / "staging"
            staging.mkdir(parents=True, exist_ok=True)
            self.producer = Producer(self.settings, self.signer, staging)
            await self.producer.start()
            try:
                with projector_log(self.directory / "projector.log"):
                    async with running_projector(self.settings, projector) as self.projector:
                        await asyncio.gather(*(self.start_worker(e) for e in self.workers))
                        try:
                            yield self
                            await self.wait_for_outcomes()
                            await self.check()
                        finally:
                            for worker in self.workers.values():
                                await asyncio.to_thread(worker.stop)
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(30):
                        await self.producer.stop()
        finally:
            self.report.broker_restarts = self.broker.restarts
            await self.broker.stop()
            self.broker.remove()
            if self.database is not None:
                self.report.database_restarts = self.database.restarts
                await self.database.stop()
                self.database.remove()

    async def publish(self, count: int) -> None:
        """Publish ``count`` uploads; they are accepted once the broker acknowledged them."""
        assert self.producer is not None
        uploads = [
            self.producer.upload(os.urandom(FILE), f"trial-{len(self.accepted) + i}.bin")
            for i in range(count)
        ]
        async with asyncio.timeout(120):
            await self.producer.send(*uploads)
        self.accepted.extend(uploads)
        self.report.uploads = len(self.accepted)

    async def outcomes(self) -> int:
        """How many accepted uploads have a final status in the index."""
        return len(self.accepted) - len(await self.without_outcome())

    async def without_outcome(self) -> list[UUID]:
        """The accepted uploads without a final status in the index."""
        ids = [u.file_id for u in self.accepted]
        rows = await fetch(
            self.settings.database_url,
            "SELECT file_id FROM uploads WHERE file_id = ANY($1::uuid[]) "
            "AND status IN ('stored', 'rejected', 'failed')",
            ids,
        )
        done = {r["file_id"] for r in rows}
        return [file_id for file_id in ids if file_id not in done]

    def logs(self) -> list[Path]:
        """The workers', the broker's and the projector's logs."""
        found = [w.log for w in self.workers.values()]
        found += [self.directory / "tansu.log", self.directory / "projector.log"]
        return [path for path in found if path.exists()]

    async def until_outcomes(self, at_least: int) -> None:
        async def enough() -> bool:
            if self.projector is not None and self.projector.done():
                self.projector.result()  # raises what stopped it
                raise AssertionError("the projector stopped by itself")
            try:
                return await self.outcomes() >= at_least
            except (OSError, asyncpg.PostgresError):  # the database is restarting
                return False

        try:
            await wait_until(enough, OUTCOME_DEADLINE_S, interval=0.5, message="upload outcomes")
        except TimeoutError as exc:
            missing = await self.without_outcome()
            where = await explain(
                self.settings, missing, self.copies(), self.logs(), element_id="se-a"
            )
            raise AssertionError(
                f"{self.report.scenario}: fewer than {at_least} of {len(self.accepted)} "
                f"accepted uploads have an outcome after {OUTCOME_DEADLINE_S:.0f} s\n{where}"
            ) from exc

    async def wait_for_outcomes(self) -> None:
        await self.until_outcomes(len(self.accepted))

    # -- what the trial left behind -------------------------------------------------------------

    def copies(self) -> dict[UUID, list[str]]:
        """Every stored copy (a sidecar) on every element: file_id -> element ids."""
        found: dict[UUID, list[str]] = {}
        for element_id in self.workers:
            root = self.element_root(element_id)
            for sidecar in root.rglob("*.attr.json"):
                if ".artstore" in sidecar.relative_to(root).parts:
                    continue
                doc: dict[str, Any] = json.loads(sidecar.read_text())
                found.setdefault(UUID(doc["file_id"]), []).append(element_id)
        return found

    async def stored_facts(self) -> list[FileStored]:
        wanted = {u.file_id for u in self.accepted}

        def complete(received: list[Any]) -> bool:
            seen = {e.data.file.file_id for _, e in received if isinstance(e.data, FileStored)}
            return wanted <= seen

        received = await read_events(
            self.settings, [Topic.FILES], complete, deadline_s=120, settle_ms=500
        )
        return [e.data for _, e in received if isinstance(e.data, FileStored)]

    async def check(self) -> TrialReport:
        """Every accepted upload: one copy on one element, its fact, its row, its status; the
        projection applied every record up to its position. Fills and returns the report."""
        report = self.report
        report.broker_restarts = self.broker.restarts
        if self.database is not None:
            report.database_restarts = self.database.restarts
        copies = self.copies()
        facts = await self.stored_facts()
        fact_elements: dict[UUID, set[str]] = {}
        for fact in facts:
            fact_elements.setdefault(fact.file.file_id, set()).add(fact.file.element_id)
        fact_counts = Counter(f.file.file_id for f in facts)
        ids = [u.file_id for u in self.accepted]
        rows = await fetch(
            self.settings.database_url,
            "SELECT u.file_id, u.status, u.element_id, f.element_id AS indexed_on "
            "FROM uploads u LEFT JOIN files f ON f.file_id = u.file_id "
            "WHERE u.file_id = ANY($1::uuid[])",
            ids,
        )
        index = {r["file_id"]: r for r in rows}
        problems: list[str] = []
        for file_id in ids:
            where = copies.get(file_id, [])
            row = index.get(file_id)
            if len(where) > 1:
                report.duplicated += 1
                problems.append(f"{file_id}: stored {len(where)} times, on {where}")
                continue
            if (
                len(where) != 1
                or fact_elements.get(file_id) != {where[0]}
                or row is None
                or row["status"] != "stored"
                or row["indexed_on"] != where[0]
            ):
                report.lost += 1
                problems.append(
                    f"{file_id}: copies on {where}, facts from {fact_elements.get(file_id)}, "
                    f"index {dict(row) if row is not None else None}"
                )
                continue
            report.stored += 1
            report.by_element[where[0]] = report.by_element.get(where[0], 0) + 1
        report.duplicate_facts = sum(n - 1 for n in fact_counts.values())
        positions = await fetch(
            self.settings.database_url,
            "SELECT topic, partition, next_offset, events_applied, gap_offsets "
            "FROM projection_offsets WHERE starts_with(topic, $1)",
            # This trial's topics only: the database is shared by the run's trials.
            f"{self.settings.topic_prefix}.",
        )
        for p in positions:
            # Offsets gone past without a record only on the broker's proof (retention, or the
            # same answer past them for 30 s: see consumers/gaps.py), counted apart.
            report.absent_offsets += p["gap_offsets"]
            if p["next_offset"] != p["events_applied"] + p["gap_offsets"]:
                problems.append(
                    f"projection {p['topic']}[{p['partition']}] is at {p['next_offset']} "
                    f"but applied {p['events_applied']} records and went past "
                    f"{p['gap_offsets']} empty offsets"
                )
        if problems:
            listing = "\n".join(problems[:20])
            logs = []
            for path in self.logs():
                logs += [f"--- last lines of {path.name} ---", *tail(path, 40)]
            raise AssertionError(
                f"{report.scenario}: {len(problems)} problem(s); {report.line()}\n{listing}\n"
                + "\n".join(logs)
            )
        return report
