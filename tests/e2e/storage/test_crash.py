"""SIGKILL the worker at each journal step; after a restart nothing is lost, torn or doubled.

Every scenario runs on a local element and on an S3 element (a prefix of its own in the
module's bucket, removed once its objects are recorded). S3 has no temporary names, renames or
directory entries: there the "data-renamed" and "dir-synced" steps follow no-ops
(``S3Storage.publish_pending`` and ``sync_dirs``), but the worker still dies at them, so they
prove that a crash right after the data and sidecar PUTs recovers too.

Every scenario is independent: its own element, topics (prefix) and worker process. They run
concurrently in a few lanes (each scenario starts a worker twice and joins consumer groups
twice, mostly waiting). When a scenario ends, the element's objects (files on disk, or objects
under the S3 prefix) are recorded as they are, and each test checks its own scenario's record
the same way for both kinds of element.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from minio import Minio

from auth.testing import TestSigner
from base.settings import Settings
from events import (
    DeleteFile,
    DeletionReason,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    ReceivedEvent,
    Topic,
    UpdateMetadata,
    create_topics,
)
from storage_workers.backends import is_temporary
from tests.e2e.storage.worker_process import WorkerProcess, in_lanes
from tests.factories import stored_sidecar
from tests.helpers import read_events, wait_until
from tests.storage_support import Producer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

UPLOAD_STEPS = [
    "journal-intent",
    "data-written",
    "data-renamed",
    "sidecar-written",
    "dir-synced",
    "journal-committed",
    "published",
    "acknowledged",
]
UPDATE_DELETE_STEPS = ["journal-intent", "sidecar-written", "journal-committed", "published"]
BACKENDS = ["local", pytest.param("s3", marks=pytest.mark.s3)]
KINDS = ["local", "s3"]
SCENARIOS = [
    (kind, family, step)
    for kind in KINDS
    for family, steps in (
        ("upload", UPLOAD_STEPS),
        ("update", UPDATE_DELETE_STEPS),
        ("delete", UPDATE_DELETE_STEPS),
        ("expiry", UPDATE_DELETE_STEPS),
    )
    for step in steps
]
"""An expiry is a delete no command asked for (the TTL sweep): its crash points are the delete's."""
LANES = 6
"""Scenarios at once: enough to overlap the group joins, few enough for a two-core machine."""
ELEMENT = "se-crash"


class Element:
    """Where a scenario's element keeps its objects: a local directory or an S3 prefix."""

    def __init__(self, kind: str, settings: Settings, lane: str) -> None:
        self.kind = kind
        self.root = settings.data_dir / ELEMENT
        self.bucket = settings.s3_bucket
        self.prefix = f"{ELEMENT}-{lane}"
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    def worker_config(self) -> dict[str, object]:
        if self.kind == "local":
            return {"root": self.root}
        return {"backend": "s3", "s3_bucket": self.bucket, "s3_prefix": self.prefix}

    def put(self, key: str, data: bytes) -> None:
        if self.kind == "local":
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.client.put_object(self.bucket, f"{self.prefix}/{key}", io.BytesIO(data), len(data))

    def objects(self) -> dict[str, bytes]:
        """Every file or object of the element, by its key under the root or prefix."""
        if self.kind == "local":
            return {
                p.relative_to(self.root).as_posix(): p.read_bytes()
                for p in self.root.rglob("*")
                if p.is_file()
            }
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
        """Remove the S3 element's objects (a local element stays in the test's directory)."""
        if self.kind == "s3":
            for item in self.client.list_objects(
                self.bucket, prefix=f"{self.prefix}/", recursive=True
            ):
                if item.object_name is not None:
                    self.client.remove_object(self.bucket, item.object_name)


@dataclass
class Outcome:
    """What one crash scenario left behind."""

    file_id: UUID
    objects: dict[str, bytes] = field(default_factory=dict)
    """The element's files or objects once the restarted worker stopped, by key."""
    staged: Path | None = None
    stored: FileStored | None = None
    facts: list[ReceivedEvent] = field(default_factory=list)
    exit_code: int | None = None
    error: BaseException | None = None

    def of(self, model: type, file_id: UUID) -> list[Any]:
        """Payloads of type ``model`` about ``file_id``."""
        found = []
        for event in self.facts:
            data = event.data
            about = data.file.file_id if hasattr(data, "file") else getattr(data, "file_id", None)
            if isinstance(data, model) and about == file_id:
                found.append(data)
        return found


def has(model: type, file_id: UUID) -> Callable[[list[tuple[Any, ReceivedEvent]]], bool]:
    def check(received: list[tuple[Any, ReceivedEvent]]) -> bool:
        return bool(Outcome(file_id, facts=[e for _, e in received]).of(model, file_id))

    return check


async def facts_until(settings: Settings, model: type, file_id: UUID) -> list[ReceivedEvent]:
    received = await read_events(
        settings, [Topic.FILES], has(model, file_id), deadline_s=60, settle_ms=300
    )
    return [event for _, event in received]


def plant_expired(element: Element, content: bytes) -> UUID:
    """A temporary file stored two days ago with a one-day TTL, as its sidecar says."""
    stored_at = datetime.now(UTC) - timedelta(days=2)
    sidecar = stored_sidecar(
        content,
        element_id=ELEMENT,
        filename="expiring.txt",
        stored_at=stored_at,
        retention_policy="temporary",
        ttl_expires_at=stored_at + timedelta(days=1),
    )
    element.put(sidecar.storage_path, content)
    element.put(f"{sidecar.storage_path}.attr.json", sidecar.encode())
    return sidecar.file_id


async def run_scenario(
    kind: str, family: str, step: str, settings: Settings, jwks_file: Path, signer: TestSigner
) -> Outcome:
    lane = f"{kind}-{family}-{step}"
    settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}.{lane}",
            "data_dir": settings.data_dir / lane,
        }
    )
    settings.data_dir.mkdir(parents=True)
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    element = Element(kind, settings, lane)
    worker = WorkerProcess(
        settings,
        jwks_file,
        signer.issuer,
        element_id=ELEMENT,
        mode="edit",
        **element.worker_config(),
        capacity_bytes=10**9,
        floor_full_bytes=0,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
        ttl_sweep_interval_s=0.5,
    )
    producer = Producer(settings, signer, settings.data_dir / "staging")
    await producer.start()
    content = f"crash at {step}".encode() * 50
    upload = producer.upload(content, f"{step}.txt", retention_policy="temporary")
    outcome = Outcome(upload.file_id, staged=producer.staging / upload.staged.path)  # type: ignore[union-attr]
    if family == "expiry":
        outcome = Outcome(await asyncio.to_thread(plant_expired, element, content))
    try:
        worker.start(crash_at=f"{'delete' if family == 'expiry' else family}.{step}")
        if family != "expiry":
            # (An expiring worker kills itself at its first sweep, half a second after it is
            # ready: too soon to be sure of seeing it ready.)
            await wait_until(worker.ready_async, 90, message="worker ready")
            await producer.send(upload)
        if family in ("update", "delete"):
            stored = await facts_until(settings, FileStored, upload.file_id)
            outcome.stored = Outcome(upload.file_id, facts=stored).of(FileStored, upload.file_id)[0]
            if family == "update":
                await producer.send(
                    UpdateMetadata(
                        file_id=upload.file_id, element_id=ELEMENT, description=f"after {step}"
                    )
                )
            else:
                await producer.send(DeleteFile(file_id=upload.file_id, element_id=ELEMENT))
        await wait_until(lambda: worker.exited() is not None, 90, message=f"crash at {step}")
        outcome.exit_code = worker.exited()
        worker.proc = None
        worker.start()
        done = {"upload": FileStored, "update": MetadataUpdated}.get(family, FileDeleted)
        # The restarted worker recovers while its fact is awaited; ready means recovery is done.
        outcome.facts, _ = await asyncio.gather(
            facts_until(settings, done, outcome.file_id),
            wait_until(worker.ready_async, 90, message="worker ready after restart"),
        )
    except Exception as exc:
        outcome.error = exc
    finally:
        await asyncio.to_thread(worker.stop)
        await producer.stop()
    try:
        outcome.objects = await asyncio.to_thread(element.objects)
    finally:
        await asyncio.to_thread(element.remove)
    return outcome


@pytest.fixture(scope="module")
async def outcomes(settings: Settings, jwks_file: Path, signer: TestSigner) -> dict[str, Outcome]:
    results = await in_lanes(
        [partial(run_scenario, k, f, s, settings, jwks_file, signer) for k, f, s in SCENARIOS],
        LANES,
    )
    return {f"{k}:{f}.{s}": r for (k, f, s), r in zip(SCENARIOS, results, strict=True)}


def outcome_of(outcomes: dict[str, Outcome], scenario: str) -> Outcome:
    outcome = outcomes[scenario]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.exit_code == -9, f"the worker was to SIGKILL itself at {scenario}"
    return outcome


def files_of(outcome: Outcome) -> list[str]:
    """The keys of the scenario's file and its sidecar (outside ``.artstore/``)."""
    return sorted(
        key
        for key in outcome.objects
        if str(outcome.file_id) in key and not key.startswith(".artstore/")
    )


def under(outcome: Outcome, directory: str) -> list[str]:
    return [key for key in outcome.objects if key.startswith(f".artstore/{directory}/")]


def assert_clean(outcome: Outcome) -> None:
    """No temporary object left, the journal settled, and no data without its sidecar."""
    assert not [key for key in outcome.objects if is_temporary(key)]
    assert not under(outcome, "journal")
    keys = {key for key in outcome.objects if not key.startswith(".artstore/")}
    for key in keys:
        if not key.endswith(".attr.json"):
            assert f"{key}.attr.json" in keys, f"{key} has no sidecar"


@pytest.mark.parametrize("step", UPLOAD_STEPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_upload_survives_a_crash_at(backend: str, step: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcome_of(outcomes, f"{backend}:upload.{step}")
    announced = outcome.of(FileStored, outcome.file_id)
    assert len({f.file.storage_path for f in announced}) == 1
    data, sidecar = files_of(outcome)  # exactly one copy: one data file, one sidecar
    assert sidecar == f"{data}.attr.json" == f"{announced[0].file.storage_path}.attr.json"
    content = outcome.objects[data]
    assert content == f"crash at {step}".encode() * 50
    assert hashlib.sha256(content).hexdigest() == announced[0].file.checksum
    assert json.loads(outcome.objects[sidecar])["file_id"] == str(outcome.file_id)
    assert_clean(outcome)
    assert outcome.staged is not None
    assert not outcome.staged.exists(), "the staged bytes of a stored file are removed"
    assert not under(outcome, "releases")


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_update_is_applied_exactly_once_after_a_crash_at(
    backend: str, step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"{backend}:update.{step}")
    assert outcome.stored is not None
    versions = {m.file.version for m in outcome.of(MetadataUpdated, outcome.file_id)}
    assert versions == {2}
    path = outcome.stored.file.storage_path
    assert files_of(outcome) == [path, f"{path}.attr.json"]
    sidecar = json.loads(outcome.objects[f"{path}.attr.json"])
    assert sidecar["version"] == 2
    assert sidecar["description"] == f"after {step}"
    assert_clean(outcome)


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_completes_after_a_crash_at(
    backend: str, step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"{backend}:delete.{step}")
    assert outcome.stored is not None
    (deleted, *_) = outcome.of(FileDeleted, outcome.file_id)
    assert files_of(outcome) == []
    assert deleted.storage_path == outcome.stored.file.storage_path
    assert f".artstore/deleted/{outcome.file_id}.json" in outcome.objects
    assert_clean(outcome)


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_expiry_is_completed_and_announced_after_a_crash_at(
    backend: str, step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"{backend}:expiry.{step}")
    announced = outcome.of(FileDeleted, outcome.file_id)
    assert announced, "the expiry must be announced even though the worker died"
    assert {d.reason for d in announced} == {DeletionReason.TTL_EXPIRED}
    assert files_of(outcome) == []
    assert f".artstore/deleted/{outcome.file_id}.json" in outcome.objects
    assert_clean(outcome)
    assert not under(outcome, "releases")
