"""An S3 element's worker: upload from S3 staging, mode changes, rebuild from its sidecars."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest

import schemas
from auth.testing import TestSigner
from base.settings import Settings
from events import (
    ChangeMode,
    FileCommandRejected,
    FileStored,
    Mode,
    ModeChanged,
    ModeChangeRejected,
    RejectionReason,
    S3StagedObject,
    UpdateMetadata,
)
from storage_workers.backends import S3Storage
from storage_workers.config import WorkerConfig
from storage_workers.rebuild import rebuild_element
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import CLIENT_ID, TEST_SESSION_TIMEOUT_MS, FactLog, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.s3]


@pytest.fixture(scope="module")
async def s3_service(
    settings: Settings, s3_bucket: str, jwks_file: Path, topics: None, facts: FactLog
) -> AsyncIterator[StorageService]:
    config = WorkerConfig(
        element_id="se-s3",
        mode=Mode.RW,
        backend="s3",
        s3_bucket=s3_bucket,
        s3_prefix="se-s3",
        jwks_file=jwks_file,
        token_issuer=TestSigner().issuer,
        heartbeat_interval_s=1,
        capacity_bytes=10**12,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )
    svc = StorageService(settings, config)
    assert isinstance(svc.backend, S3Storage)
    await svc.start()
    await wait_until(lambda: svc.consuming_uploads, 30, message="consuming uploads")
    yield svc
    await svc.stop()


def stage_s3(service: StorageService, content: bytes) -> S3StagedObject:
    assert isinstance(service.backend, S3Storage)
    bucket = service.backend.bucket
    key = f"staging/{CLIENT_ID}/{uuid.uuid4().hex}"
    service.backend.client.put_object(bucket, key, io.BytesIO(content), len(content))
    return S3StagedObject(bucket=bucket, key=key)


async def test_s3_upload_is_stored_and_reads_back(
    s3_service: StorageService, producer: Producer, facts: FactLog
) -> None:
    content = bytes(range(256)) * 40_000  # ~10 MB: a multipart upload
    staged = stage_s3(s3_service, content)
    command = producer.upload(
        content,
        "Скан договора.tiff",
        staged=staged,
        checksum=hashlib.sha256(content).hexdigest(),
        file_size=len(content),
    )
    await producer.send(command)
    stored = await facts.wait(FileStored, within=60, file__file_id=command.file_id)
    backend = s3_service.backend
    assert b"".join(backend.read_range(stored.file.storage_path)) == content
    sidecar = json.loads(backend.read_bytes(stored.file.storage_path + ".attr.json"))
    jsonschema.validate(sidecar, schemas.attr_schema("2"))
    assert sidecar["checksum"] == command.checksum
    assert stored.file.storage_filename.startswith("Скан_договора_tester_")
    assert isinstance(backend, S3Storage)
    names = [o.object_name for o in backend.client.list_objects(backend.bucket, recursive=True)]
    assert f"se-s3/{stored.file.storage_path}" in names
    await wait_until(
        lambda: not list(backend.client.list_objects(staged.bucket, prefix=staged.key)),
        30,
        message="staged object removed",
    )


async def test_mode_transitions_are_enforced_and_recorded(
    s3_service: StorageService, producer: Producer, facts: FactLog
) -> None:
    content = b"frozen soon"
    command = producer.upload(content, staged=stage_s3(s3_service, content))
    await producer.send(command)
    await facts.wait(FileStored, within=30, file__file_id=command.file_id)

    await producer.send(ChangeMode(element_id="se-s3", target_mode=Mode.AR, reason="skip"))
    skipped = await facts.wait(ModeChangeRejected, element_id="se-s3")
    assert skipped.allowed == [Mode.RO]

    await producer.send(
        ChangeMode(element_id="se-s3", target_mode=Mode.RO, reason="quarter closed"),
        token=producer.token(scopes={"files:write"}),
    )
    await wait_until(lambda: len(facts.of(ModeChangeRejected, element_id="se-s3")) == 2, 30)

    await producer.send(ChangeMode(element_id="se-s3", target_mode=Mode.RO, reason="closed"))
    changed = await facts.wait(ModeChanged, element_id="se-s3")
    assert (changed.from_mode, changed.to_mode) == (Mode.RW, Mode.RO)
    state = json.loads(s3_service.backend.read_bytes(".artstore/element.json"))
    assert state["mode"] == "ro"
    assert state["history"][-1]["reason"] == "closed"
    await wait_until(
        lambda: not s3_service.consuming_uploads, 30, message="stopped consuming uploads"
    )

    def mode_gauge(mode: str) -> float | None:
        labels = {"element_id": "se-s3", "mode": mode}
        return s3_service.metrics.registry.get_sample_value("artstore_storage_mode", labels)

    await wait_until(
        lambda: (mode_gauge("ro"), mode_gauge("rw")) == (1, 0), 10, message="mode gauge: ro"
    )

    update = UpdateMetadata(file_id=command.file_id, element_id="se-s3", description="x")
    await producer.send(update)
    refused = await facts.wait(FileCommandRejected, file_id=command.file_id)
    assert refused.reason is RejectionReason.ELEMENT_MODE

    await producer.send(ChangeMode(element_id="se-s3", target_mode=Mode.RW, reason="oops"))

    def unconfirmed() -> list[ModeChangeRejected]:
        refused = facts.of(ModeChangeRejected, element_id="se-s3")
        return [r for r in refused if "confirm" in r.reason]

    await wait_until(lambda: bool(unconfirmed()), 30)
    assert unconfirmed()[0].allowed == [Mode.RW, Mode.AR]
    await producer.send(ChangeMode(element_id="se-s3", target_mode=Mode.AR, reason="archive"))
    await wait_until(lambda: len(facts.of(ModeChanged, element_id="se-s3")) == 2, 30)


async def test_rebuild_reannounces_every_file_from_sidecars(
    s3_service: StorageService, settings: Settings, facts: FactLog
) -> None:
    before = len(facts.of(FileStored))
    stored_here = {f.file.file_id for f in facts.of(FileStored, file__element_id="se-s3")}
    report = await rebuild_element(settings, s3_service.config)
    assert report.announced == len(stored_here)
    assert report.orphans == []
    assert report.unreadable == []
    await wait_until(lambda: len(facts.of(FileStored)) >= before + len(stored_here), 30)
