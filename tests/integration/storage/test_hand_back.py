"""A full element hands uploads back, stops consuming, and takes them when it has room again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import DeleteFile, FileDeleted, FileStored, Mode
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import TEST_SESSION_TIMEOUT_MS, FactLog, Producer

pytestmark = [pytest.mark.kafka]

FILE = 4000
"""Bytes per upload; the element holds two above its full floor, not three."""


@pytest.fixture(scope="module")
async def service(
    settings: Settings, jwks_file: Path, topics: None, facts: FactLog
) -> AsyncIterator[StorageService]:
    config = WorkerConfig(
        element_id="se-small",
        mode=Mode.EDIT,
        root=settings.data_dir / "se-small",
        jwks_file=jwks_file,
        token_issuer=TestSigner().issuer,
        heartbeat_interval_s=0.5,
        capacity_bytes=10_000,
        floor_full_bytes=1_000,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )
    svc = StorageService(settings, config)
    await svc.start()
    await wait_until(lambda: svc.consuming_uploads, 30, message="consuming uploads")
    yield svc
    await svc.stop()


async def test_a_full_element_resumes_when_it_has_room_again(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    uploads = [
        producer.upload(bytes([i]) * FILE, f"{i}.bin", retention_policy="temporary", ttl_days=1)
        for i in range(3)
    ]
    await producer.send(*uploads[:2])
    first = await facts.wait(FileStored, file__file_id=uploads[0].file_id)
    await facts.wait(FileStored, file__file_id=uploads[1].file_id)

    await producer.send(uploads[2])
    await wait_until(lambda: not service.consuming_uploads, 30, message="stepped aside when full")
    assert not facts.of(FileStored, file__file_id=uploads[2].file_id)

    await producer.send(DeleteFile(file_id=first.file.file_id, element_id="se-small"))
    await facts.wait(FileDeleted, file_id=first.file.file_id)
    third = await facts.wait(FileStored, within=60, file__file_id=uploads[2].file_id)
    assert third.file.element_id == "se-small"
    assert len(facts.of(FileStored, file__file_id=uploads[2].file_id)) == 1
