"""SIGKILL the worker at each journal step; after a restart nothing is lost, torn or doubled.

Every scenario is independent: its own element, topics (prefix) and worker process. They run
concurrently in a few lanes (each scenario starts a worker twice and joins consumer groups
twice, mostly waiting), and each test then checks its own scenario's outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from artstore.settings import Settings
from auth.testing import TestSigner
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
from tests.e2e.storage.worker_process import WorkerProcess
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
SCENARIOS = (
    [("upload", s) for s in UPLOAD_STEPS]
    + [("update", s) for s in UPDATE_DELETE_STEPS]
    + [("delete", s) for s in UPDATE_DELETE_STEPS]
    + [("expiry", s) for s in UPDATE_DELETE_STEPS]
)
"""An expiry is a delete no command asked for (the TTL sweep): its crash points are the delete's."""
LANES = 6
"""Scenarios at once: enough to overlap the group joins, few enough for a two-core machine."""
ELEMENT = "se-crash"


@dataclass
class Outcome:
    """What one crash scenario left behind."""

    root: Path
    file_id: UUID
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
        return bool(Outcome(Path(), file_id, facts=[e for _, e in received]).of(model, file_id))

    return check


async def facts_until(settings: Settings, model: type, file_id: UUID) -> list[ReceivedEvent]:
    received = await read_events(
        settings, [Topic.FILES], has(model, file_id), deadline_s=60, settle_ms=300
    )
    return [event for _, event in received]


def plant_expired(root: Path, content: bytes) -> UUID:
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
    data = root / sidecar.storage_path
    data.parent.mkdir(parents=True)
    data.write_bytes(content)
    Path(f"{data}.attr.json").write_bytes(sidecar.encode())
    return sidecar.file_id


async def run_scenario(
    family: str, step: str, settings: Settings, jwks_file: Path, signer: TestSigner
) -> Outcome:
    lane = f"{family}-{step}"
    settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}.{lane}",
            "data_dir": settings.data_dir / lane,
        }
    )
    settings.data_dir.mkdir(parents=True)
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    root = settings.data_dir / ELEMENT
    worker = WorkerProcess(
        settings,
        jwks_file,
        signer.issuer,
        element_id=ELEMENT,
        mode="edit",
        root=root,
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
    outcome = Outcome(root, upload.file_id, producer.staging / upload.staged.path)  # type: ignore[union-attr]
    if family == "expiry":
        outcome = Outcome(root, plant_expired(root, content))
    try:
        worker.start(crash_at=f"{'delete' if family == 'expiry' else family}.{step}")
        if family != "expiry":
            # (An expiring worker kills itself at its first sweep, half a second after it is
            # ready: too soon to be sure of seeing it ready.)
            await wait_until(worker.ready_async, 30, message="worker ready")
            await producer.send(upload)
        if family in ("update", "delete"):
            stored = await facts_until(settings, FileStored, upload.file_id)
            outcome.stored = Outcome(root, upload.file_id, facts=stored).of(
                FileStored, upload.file_id
            )[0]
            if family == "update":
                await producer.send(
                    UpdateMetadata(
                        file_id=upload.file_id, element_id=ELEMENT, description=f"after {step}"
                    )
                )
            else:
                await producer.send(DeleteFile(file_id=upload.file_id, element_id=ELEMENT))
        await wait_until(lambda: worker.exited() is not None, 30, message=f"crash at {step}")
        outcome.exit_code = worker.exited()
        worker.proc = None
        worker.start()
        done = {"upload": FileStored, "update": MetadataUpdated}.get(family, FileDeleted)
        # The restarted worker recovers while its fact is awaited; ready means recovery is done.
        outcome.facts, _ = await asyncio.gather(
            facts_until(settings, done, outcome.file_id),
            wait_until(worker.ready_async, 30, message="worker ready after restart"),
        )
    except Exception as exc:
        outcome.error = exc
    finally:
        await asyncio.to_thread(worker.stop)
        await producer.stop()
    return outcome


@pytest.fixture(scope="module")
async def outcomes(settings: Settings, jwks_file: Path, signer: TestSigner) -> dict[str, Outcome]:
    lanes = asyncio.Semaphore(LANES)

    async def one(family: str, step: str) -> Outcome:
        async with lanes:
            return await run_scenario(family, step, settings, jwks_file, signer)

    results = await asyncio.gather(*(one(f, s) for f, s in SCENARIOS))
    return {f"{f}.{s}": r for (f, s), r in zip(SCENARIOS, results, strict=True)}


def outcome_of(outcomes: dict[str, Outcome], scenario: str) -> Outcome:
    outcome = outcomes[scenario]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.exit_code == -9, f"the worker was to SIGKILL itself at {scenario}"
    return outcome


def files_of(root: Path, file_id: UUID) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{file_id}*") if ".artstore" not in p.parts)


def assert_clean(root: Path) -> None:
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert not list((root / ".artstore" / "journal").glob("*.json"))


@pytest.mark.parametrize("step", UPLOAD_STEPS)
def test_upload_survives_a_crash_at(step: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcome_of(outcomes, f"upload.{step}")
    announced = outcome.of(FileStored, outcome.file_id)
    assert len({f.file.storage_path for f in announced}) == 1
    data, sidecar = files_of(outcome.root, outcome.file_id)
    assert sidecar.name.endswith(".attr.json")
    assert data.read_bytes() == f"crash at {step}".encode() * 50
    assert hashlib.sha256(data.read_bytes()).hexdigest() == announced[0].file.checksum
    assert json.loads(sidecar.read_text())["file_id"] == str(outcome.file_id)
    assert_clean(outcome.root)
    assert outcome.staged is not None
    assert not outcome.staged.exists(), "the staged bytes of a stored file are removed"
    assert not list((outcome.root / ".artstore" / "releases").glob("*.json"))


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
def test_update_is_applied_exactly_once_after_a_crash_at(
    step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"update.{step}")
    assert outcome.stored is not None
    versions = {m.file.version for m in outcome.of(MetadataUpdated, outcome.file_id)}
    assert versions == {2}
    sidecar = json.loads(
        (outcome.root / (outcome.stored.file.storage_path + ".attr.json")).read_text()
    )
    assert sidecar["version"] == 2
    assert sidecar["description"] == f"after {step}"
    assert_clean(outcome.root)


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
def test_delete_completes_after_a_crash_at(step: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcome_of(outcomes, f"delete.{step}")
    assert outcome.stored is not None
    (deleted, *_) = outcome.of(FileDeleted, outcome.file_id)
    assert files_of(outcome.root, outcome.file_id) == []
    assert deleted.storage_path == outcome.stored.file.storage_path
    assert (outcome.root / ".artstore" / "deleted" / f"{outcome.file_id}.json").exists()
    assert_clean(outcome.root)


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
def test_an_expiry_is_completed_and_announced_after_a_crash_at(
    step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcome_of(outcomes, f"expiry.{step}")
    announced = outcome.of(FileDeleted, outcome.file_id)
    assert announced, "the expiry must be announced even though the worker died"
    assert {d.reason for d in announced} == {DeletionReason.TTL_EXPIRED}
    assert files_of(outcome.root, outcome.file_id) == []
    assert (outcome.root / ".artstore" / "deleted" / f"{outcome.file_id}.json").exists()
    assert_clean(outcome.root)
    assert not list((outcome.root / ".artstore" / "releases").glob("*.json"))
