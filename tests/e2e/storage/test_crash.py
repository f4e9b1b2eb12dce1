"""SIGKILL the worker at each journal step; after a restart nothing is lost, torn or doubled."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from artstore.settings import Settings
from auth.testing import TestSigner
from events import DeleteFile, FileDeleted, FileStored, MetadataUpdated, UpdateMetadata
from tests.e2e.storage.worker_process import WorkerProcess
from tests.storage_support import FactLog, Producer, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

STEPS = [
    "journal-intent",
    "data-written",
    "data-renamed",
    "sidecar-written",
    "dir-synced",
    "journal-committed",
    "published",
    "acknowledged",
]
ROOT_NAME = "se-crash"


@pytest.fixture(scope="module")
def worker(storage_settings: Settings, jwks_file: Path, topics: None) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        storage_settings,
        jwks_file,
        TestSigner().issuer,
        element_id=ROOT_NAME,
        mode="edit",
        root=storage_settings.data_dir / ROOT_NAME,
        capacity_bytes=10**9,
        floor_full_bytes=0,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
    )
    yield process
    process.kill()


def root_of(settings: Settings) -> Path:
    return settings.data_dir / ROOT_NAME


def files_of(root: Path, file_id: UUID) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{file_id}*") if ".artstore" not in p.parts)


def assert_clean(root: Path) -> None:
    assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
    assert not list((root / ".artstore" / "journal").glob("*.json"))


async def crash_then_recover(worker: WorkerProcess, step: str, send: object) -> None:
    worker.start(crash_at=step)
    await wait_for(worker.ready, within=30, what="worker ready")
    await send()  # type: ignore[operator]
    await wait_for(lambda: worker.exited() is not None, within=30, what=f"crash at {step}")
    assert worker.exited() == -9
    worker.proc = None
    worker.start()
    await wait_for(worker.ready, within=30, what="worker ready after restart")


@pytest.mark.parametrize("step", STEPS)
async def test_upload_survives_a_crash_at(
    step: str,
    worker: WorkerProcess,
    producer: Producer,
    facts: FactLog,
    storage_settings: Settings,
) -> None:
    content = f"crash at {step}".encode() * 50
    command = producer.upload(content, f"{step}.txt", retention_policy="temporary")
    try:
        await crash_then_recover(worker, f"upload.{step}", lambda: producer.send(command))
        stored = await facts.wait(FileStored, within=60, file__file_id=command.file_id)
    finally:
        worker.stop()
    root = root_of(storage_settings)
    data, sidecar = files_of(root, command.file_id)
    assert sidecar.name.endswith(".attr.json")
    assert hashlib.sha256(data.read_bytes()).hexdigest() == command.checksum
    assert json.loads(sidecar.read_text())["file_id"] == str(command.file_id)
    assert {f.file.storage_path for f in facts.of(FileStored, file__file_id=command.file_id)} == {
        stored.file.storage_path
    }
    assert_clean(root)


@pytest.fixture(scope="module")
async def stored_files(
    worker: WorkerProcess, producer: Producer, facts: FactLog
) -> dict[str, FileStored]:
    commands = [
        producer.upload(f"file {i}".encode(), f"f{i}.txt", retention_policy="temporary")
        for i in range(8)
    ]
    worker.start()
    try:
        await wait_for(worker.ready, within=30)
        await producer.send(*commands)
        out = {}
        for c in commands:
            out[str(c.file_id)] = await facts.wait(FileStored, within=60, file__file_id=c.file_id)
    finally:
        worker.stop()
    return out


UPDATE_DELETE_STEPS = ["journal-intent", "sidecar-written", "journal-committed", "published"]


@pytest.mark.parametrize("index", range(len(UPDATE_DELETE_STEPS)))
async def test_update_is_applied_exactly_once_after_a_crash_at(
    index: int,
    worker: WorkerProcess,
    producer: Producer,
    facts: FactLog,
    stored_files: dict[str, FileStored],
    storage_settings: Settings,
) -> None:
    step = UPDATE_DELETE_STEPS[index]
    stored = list(stored_files.values())[index]
    file_id = stored.file.file_id
    update = UpdateMetadata(file_id=file_id, element_id=ROOT_NAME, description=f"after {step}")
    try:
        await crash_then_recover(worker, f"update.{step}", lambda: producer.send(update))
        await facts.wait(MetadataUpdated, within=60, file__file_id=file_id)
    finally:
        worker.stop()
    versions = {m.file.version for m in facts.of(MetadataUpdated, file__file_id=file_id)}
    assert versions == {2}
    root = root_of(storage_settings)
    sidecar = json.loads((root / (stored.file.storage_path + ".attr.json")).read_text())
    assert sidecar["version"] == 2
    assert sidecar["description"] == f"after {step}"
    assert_clean(root)


@pytest.mark.parametrize("index", range(len(UPDATE_DELETE_STEPS)))
async def test_delete_completes_after_a_crash_at(
    index: int,
    worker: WorkerProcess,
    producer: Producer,
    facts: FactLog,
    stored_files: dict[str, FileStored],
    storage_settings: Settings,
) -> None:
    step = UPDATE_DELETE_STEPS[index]
    stored = list(stored_files.values())[4 + index]
    file_id = stored.file.file_id
    try:
        await crash_then_recover(
            worker,
            f"delete.{step}",
            lambda: producer.send(DeleteFile(file_id=file_id, element_id=ROOT_NAME)),
        )
        deleted = await facts.wait(FileDeleted, within=60, file_id=file_id)
    finally:
        worker.stop()
    root = root_of(storage_settings)
    assert files_of(root, file_id) == []
    assert deleted.storage_path == stored.file.storage_path
    assert (root / ".artstore" / "deleted" / f"{file_id}.json").exists()
    assert_clean(root)
