"""The element's worker has the last word on ownership: a `user` token may update or delete only
files its account uploaded, whatever reached the topic; an `admin` token any."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from base.settings import Settings
from events import (
    DeleteFile,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    Mode,
    RejectionReason,
    UpdateMetadata,
)
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import (
    WRITE_SCOPES,
    FactLog,
    Producer,
    running_worker,
    worker_config,
)

pytestmark = [pytest.mark.kafka]

ELEMENT = "se-owned"
STRANGER = "sa_test_stranger_22222222"


@pytest.fixture(scope="module")
async def service(
    settings: Settings, jwks_file: Path, topics: None, facts: FactLog
) -> AsyncIterator[StorageService]:
    root = settings.data_dir / ELEMENT
    config = worker_config(ELEMENT, mode=Mode.EDIT, root=root, jwks_file=jwks_file)
    async with running_worker(settings, config) as svc:
        yield svc


async def stored_file(producer: Producer, facts: FactLog) -> FileStored:
    command = producer.upload(b"owned bytes", retention_policy="temporary", ttl_days=1)
    await producer.send(command)
    stored: FileStored = await facts.wait(FileStored, file__file_id=command.file_id)
    return stored


async def test_a_stranger_user_can_neither_update_nor_delete(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    stored = await stored_file(producer, facts)
    file_id = stored.file.file_id
    stranger = producer.token(client_id=STRANGER, role="user")
    await producer.send(
        UpdateMetadata(file_id=file_id, element_id=ELEMENT, description="stolen"),
        DeleteFile(file_id=file_id, element_id=ELEMENT, reason="vandalism"),
        token=stranger,
    )
    await wait_until(
        lambda: len(facts.of(FileCommandRejected, file_id=file_id)) == 2,
        30,
        message="both commands rejected",
    )
    for rejected in facts.of(FileCommandRejected, file_id=file_id):
        assert rejected.reason is RejectionReason.NOT_OWNER
        assert STRANGER in rejected.detail
        assert producer.client_id in rejected.detail
    assert not facts.of(MetadataUpdated, file__file_id=file_id)
    assert not facts.of(FileDeleted, file_id=file_id)
    assert service.worker is not None
    sidecar = await service.worker.read_sidecar(file_id)
    assert sidecar is not None
    assert sidecar.version == 1


async def test_an_admin_may_change_any_file_and_the_uploader_its_own(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    stored = await stored_file(producer, facts)
    file_id = stored.file.file_id
    admin = producer.token(scopes=WRITE_SCOPES, client_id=STRANGER, role="admin")
    await producer.send(
        UpdateMetadata(file_id=file_id, element_id=ELEMENT, description="curated"), token=admin
    )
    updated = await facts.wait(MetadataUpdated, file__file_id=file_id)
    assert updated.updated_by == STRANGER
    await producer.send(DeleteFile(file_id=file_id, element_id=ELEMENT, reason="mine"))
    deleted = await facts.wait(FileDeleted, file_id=file_id)
    assert deleted.deleted_by == producer.client_id
