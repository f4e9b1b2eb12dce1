"""SIGKILL the worker at each step of an ``ro -> ar`` move to the cold tier; restart it; check
that every file's content is in exactly one place, verified, and nothing is lost.

Each scenario runs its own local element, its own topics and a cold tier of its own: a
directory (standing for tape), or a prefix in the stack's S3 bucket. The worker moves two files
per batch, so three files take two batches and the kill lands in the first one, with one file
still waiting. Right after the kill, before the restart, the element and its cold tier are
recorded: no file may then depend on a copy nobody verified. After the restart the worker
recovers the batch, finishes the move and announces ``ElementArchived``; then the sidecars
must say where each file's content is, and it must be there and only there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from minio import Minio

from auth.testing import TestSigner
from base.settings import Settings
from events import (
    ChangeMode,
    ElementArchived,
    FileStored,
    Mode,
    ModeChanged,
    ReceivedEvent,
    Topic,
    create_topics,
)
from storage_workers.backends import LocalStorage, is_temporary
from storage_workers.catalogue import Catalogue
from storage_workers.fixity import Auditor
from storage_workers.fixity.items import plan_items
from tests.e2e.storage.worker_process import WorkerProcess, in_lanes
from tests.helpers import read_events, wait_until
from tests.storage_support import Producer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ARCHIVE_STEPS = [
    "journal-intent",
    "cold-written",
    "cold-verified",
    "sidecar-written",
    "online-removed",
    "journal-committed",
]
COLD_KINDS = ["local", "s3"]
SCENARIOS = [(kind, step) for kind in COLD_KINDS for step in ARCHIVE_STEPS]
LANES = 4
ELEMENT = "se-cold"
FILES = 3


class ColdTier:
    """A scenario's cold tier: a directory, or a prefix in the stack's bucket."""

    def __init__(self, kind: str, settings: Settings, lane: str) -> None:
        self.kind = kind
        self.root = settings.data_dir / "tape"
        self.bucket = settings.s3_bucket
        self.prefix = f"cold-{lane}"
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    def worker_config(self) -> dict[str, object]:
        if self.kind == "local":
            return {"cold_backend": "local", "cold_root": self.root}
        return {"cold_backend": "s3", "cold_s3_bucket": self.bucket, "cold_s3_prefix": self.prefix}

    def objects(self) -> dict[str, bytes]:
        if self.kind == "local":
            return files_under(self.root)
        found = {}
        for item in self.client.list_objects(self.bucket, prefix=f"{self.prefix}/", recursive=True):
            if item.object_name is None or item.is_dir:
                continue
            response = self.client.get_object(self.bucket, item.object_name)
            try:
                found[item.object_name[len(self.prefix) + 1 :]] = bytes(response.read())
            finally:
                response.close()
                response.release_conn()
        return found

    def remove(self) -> None:
        if self.kind == "s3":
            for item in self.client.list_objects(
                self.bucket, prefix=f"{self.prefix}/", recursive=True
            ):
                if item.object_name is not None:
                    self.client.remove_object(self.bucket, item.object_name)


def files_under(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@dataclass
class Snapshot:
    """The element's files and its cold tier's objects at one moment."""

    online: dict[str, bytes]
    cold: dict[str, bytes]

    def sidecar(self, path: str) -> dict[str, Any]:
        return dict(json.loads(self.online[f"{path}.attr.json"]))


@dataclass
class Outcome:
    contents: dict[UUID, bytes] = field(default_factory=dict)
    paths: dict[UUID, str] = field(default_factory=dict)
    after_kill: Snapshot | None = None
    after_restart: Snapshot | None = None
    archived: list[ElementArchived] = field(default_factory=list)
    exit_code: int | None = None
    element_root: Path | None = None
    error: BaseException | None = None


async def facts(
    settings: Settings, topic: Topic, model: type, count: int = 1
) -> list[ReceivedEvent]:
    def enough(received: list[tuple[Any, ReceivedEvent]]) -> bool:
        return sum(isinstance(e.data, model) for _, e in received) >= count

    received = await read_events(settings, [topic], enough, deadline_s=90, settle_ms=200)
    return [e for _, e in received if isinstance(e.data, model)]


async def run_scenario(
    kind: str, step: str, settings: Settings, jwks_file: Path, signer: TestSigner
) -> Outcome:
    lane = f"cold-{kind}-{step}"
    settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}.{lane}",
            "data_dir": settings.data_dir / lane,
        }
    )
    settings.data_dir.mkdir(parents=True)
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    cold = ColdTier(kind, settings, lane)
    root = settings.data_dir / ELEMENT
    worker = WorkerProcess(
        settings,
        jwks_file,
        signer.issuer,
        element_id=ELEMENT,
        mode="rw",
        root=root,
        **cold.worker_config(),
        archive_batch_files=2,
        capacity_bytes=10**9,
        floor_full_bytes=0,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
    )
    producer = Producer(settings, signer, settings.data_dir / "staging")
    await producer.start()
    outcome = Outcome(element_root=root)
    try:
        worker.start(crash_at=f"archive.{step}")
        await wait_until(worker.ready_async, 90, message="worker ready")
        uploads = [
            producer.upload(f"{step} file {n} ".encode() * (200 + n), f"cold-{n}.txt")
            for n in range(FILES)
        ]
        await producer.send(*uploads)
        stored = await facts(settings, Topic.FILES, FileStored, FILES)
        for event in stored:
            record = event.data.file
            outcome.paths[record.file_id] = record.storage_path
        for upload, n in zip(uploads, range(FILES), strict=True):
            outcome.contents[upload.file_id] = f"{step} file {n} ".encode() * (200 + n)
        await producer.send(ChangeMode(element_id=ELEMENT, target_mode=Mode.RO, reason="closed"))
        await facts(settings, Topic.ELEMENTS, ModeChanged, 1)
        await producer.send(ChangeMode(element_id=ELEMENT, target_mode=Mode.AR, reason="tape"))
        await wait_until(lambda: worker.exited() is not None, 90, message=f"crash at {step}")
        outcome.exit_code = worker.exited()
        outcome.after_kill = Snapshot(files_under(root), await asyncio.to_thread(cold.objects))
        worker.proc = None
        worker.start()
        archived = await facts(settings, Topic.ELEMENTS, ElementArchived, 1)
        outcome.archived = [e.data for e in archived]
    except Exception as exc:
        outcome.error = exc
    finally:
        await asyncio.to_thread(worker.stop)
        await producer.stop()
    try:
        outcome.after_restart = Snapshot(files_under(root), await asyncio.to_thread(cold.objects))
    finally:
        await asyncio.to_thread(cold.remove)
    return outcome


@pytest.fixture(scope="module")
async def outcomes(settings: Settings, jwks_file: Path, signer: TestSigner) -> dict[str, Outcome]:
    results = await in_lanes(
        [partial(run_scenario, k, s, settings, jwks_file, signer) for k, s in SCENARIOS], LANES
    )
    return {f"{k}:{s}": r for (k, s), r in zip(SCENARIOS, results, strict=True)}


def outcome_of(outcomes: dict[str, Outcome], scenario: str) -> Outcome:
    outcome = outcomes[scenario]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.exit_code == -9, f"the worker was to SIGKILL itself at archive.{scenario}"
    assert len(outcome.contents) == len(outcome.paths) == FILES
    return outcome


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("step", ARCHIVE_STEPS)
@pytest.mark.parametrize("cold", COLD_KINDS)
def test_no_file_depends_on_an_unverified_copy_right_after_a_kill_at(
    cold: str, step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"{cold}:{step}")
    snapshot = outcome.after_kill
    assert snapshot is not None
    for file_id, path in outcome.paths.items():
        content = outcome.contents[file_id]
        sidecar = snapshot.sidecar(path)  # sidecars never leave the element
        if "cold_copy" in sidecar:
            # The sidecar records the cold copy only once it was read back and matched.
            assert sidecar["cold_copy"]["sha256"] == sha256(content) == sidecar["checksum"]
            assert snapshot.cold[path] == content, f"{path}: the recorded cold copy is not whole"
        else:
            assert snapshot.online[path] == content, f"{path}: the online copy is not whole"


@pytest.mark.parametrize("step", ARCHIVE_STEPS)
@pytest.mark.parametrize("cold", COLD_KINDS)
def test_every_file_is_in_exactly_one_place_after_a_restart_from(
    cold: str, step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"{cold}:{step}")
    snapshot = outcome.after_restart
    assert snapshot is not None
    (archived, *_) = outcome.archived
    assert archived.files_cold == FILES
    assert archived.bytes_cold == sum(len(c) for c in outcome.contents.values())
    for file_id, path in outcome.paths.items():
        content = outcome.contents[file_id]
        sidecar = snapshot.sidecar(path)
        assert sidecar["file_id"] == str(file_id)
        assert sidecar["cold_copy"]["key"] == path
        assert sidecar["cold_copy"]["sha256"] == sha256(content)
        assert snapshot.cold[path] == content
        assert path not in snapshot.online, f"{path} is still online as well"
    data_online = [
        k for k in snapshot.online if not k.startswith(".artstore/") and not k.endswith(".json")
    ]
    assert data_online == []
    assert sorted(snapshot.cold) == sorted(outcome.paths.values()), "nothing else on the tier"
    assert not [k for k in [*snapshot.online, *snapshot.cold] if is_temporary(k)]
    assert not [k for k in snapshot.online if k.startswith(".artstore/journal/")]
    state = json.loads(snapshot.online[".artstore/element.json"])
    assert state["mode"] == "ar"
    assert state["archive"]["state"] == "archived"


@pytest.mark.parametrize("step", ["journal-intent", "sidecar-written"])
def test_fixity_checks_archived_sidecars_and_reports_no_cold_file_missing(
    step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"local:{step}")
    assert outcome.element_root is not None
    backend = LocalStorage(outcome.element_root)
    catalogue = Catalogue.load(backend, ELEMENT)
    assert {e.file_id for e in catalogue.entries() if e.cold} == set(outcome.paths)
    auditor = Auditor(backend, ELEMENT, catalogue.get)
    verdicts = auditor.check_all(plan_items(backend.list_keys(), catalogue.entries()))
    assert len(verdicts) == FILES
    for verdict in verdicts:
        assert verdict.findings == [], verdict.findings
        assert verdict.content_offline
        assert verdict.sidecar_checked
