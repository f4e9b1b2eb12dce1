"""An edit element's life beyond single commands, against the real broker: TTL expiry (with an
injected clock), metrics, an S3 staging area away for a while (the upload waits for it, nothing
is dead-lettered), and a v1 sidecar migrated on the element."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from auth.testing import TestSigner
from base.settings import Settings
from events import (
    DeletionReason,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    Mode,
    RejectionReason,
    S3StagedObject,
    UpdateMetadata,
    UploadRejected,
)
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.e2e.storage.own_s3 import OwnS3
from tests.helpers import wait_until
from tests.storage_support import TEST_SESSION_TIMEOUT_MS, FactLog, Producer, matching

pytestmark = [pytest.mark.kafka]

ELEMENT = "se-life"
CAPACITY = 10**12
LEGACY_ID = uuid.uuid4()
LEGACY_CONTENT = b"written by the old system"
LEGACY_PATH = f"2020/01/02/03/old_u_20200102T030000_{LEGACY_ID}.txt"
HALF_WRITTEN = "2020/01/02/03/half_u_20200102T030000_x.bin"


class Clock:
    """The worker's clock, moved forward by the test instead of waiting."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def seed_element(root: Path) -> None:
    """A v1 file from before the worker existed, and a create a crash interrupted."""
    data = root / LEGACY_PATH
    data.parent.mkdir(parents=True)
    data.write_bytes(LEGACY_CONTENT)
    v1 = {
        "file_id": str(LEGACY_ID),
        "original_filename": "old.txt",
        "storage_filename": data.name,
        "file_size": len(LEGACY_CONTENT),
        "checksum": hashlib.sha256(LEGACY_CONTENT).hexdigest().upper(),
        "created_at": "2020-01-02T03:00:00",
        "legacy_flag": True,
    }
    (root / (LEGACY_PATH + ".attr.json")).write_text(json.dumps(v1))
    (root / HALF_WRITTEN).write_bytes(b"half")
    journal = root / ".artstore" / "journal"
    journal.mkdir(parents=True)
    entry = {
        "txid": "interrupted",
        "began_at": "2020-01-02T03:00:00+00:00",
        "ops": [{"kind": "create", "file_id": str(uuid.uuid4()), "data_path": HALF_WRITTEN}],
    }
    (journal / "interrupted.json").write_text(json.dumps(entry))


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


STAGING_BUCKET = "staging-own"


@pytest.fixture(scope="module")
async def staging_s3(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OwnS3]:
    """The worker's S3 staging area, on an S3 of the module's own (stopped by a test)."""
    s3 = OwnS3(tmp_path_factory.mktemp("staging-s3"), STAGING_BUCKET)
    await s3.start()
    yield s3
    await s3.stop()
    s3.remove()


@pytest.fixture(scope="module")
async def service(
    settings: Settings,
    jwks_file: Path,
    topics: None,
    facts: FactLog,
    clock: Clock,
    staging_s3: OwnS3,
) -> AsyncIterator[StorageService]:
    root = settings.data_dir / ELEMENT
    seed_element(root)
    config = WorkerConfig(
        element_id=ELEMENT,
        mode=Mode.EDIT,
        root=root,
        jwks_file=jwks_file,
        token_issuer=TestSigner().issuer,
        heartbeat_interval_s=0.5,
        ttl_sweep_interval_s=0.1,
        capacity_bytes=CAPACITY,
        floor_full_bytes=0,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
        health_port=0,
        retry_attempts=3,
        retry_backoff_s=0.05,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )
    # S3 claim checks are read from the module's own S3, which a test stops for a while.
    own_staging = settings.model_copy(
        update={"s3_endpoint": staging_s3.endpoint, "s3_bucket": STAGING_BUCKET}
    )
    svc = StorageService(own_staging, config, clock=clock)
    await svc.start()
    await wait_until(lambda: svc.consuming_uploads, 30, message="consuming uploads")
    yield svc
    await svc.stop()


def temporary(producer: Producer, content: bytes, **fields: object):  # type: ignore[no-untyped-def]
    return producer.upload(content, "t.txt", retention_policy="temporary", **fields)


async def scrape(service: StorageService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{service.health.port}/metrics")
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return float(metrics.get((name, tuple(sorted({"element_id": ELEMENT, **labels}.items()))), 0))


async def test_interrupted_create_is_rolled_back_and_counted_at_start(
    service: StorageService,
) -> None:
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    assert not (root / HALF_WRITTEN).exists()
    assert not list((root / ".artstore" / "journal").glob("*.json"))
    metrics = await scrape(service)
    assert value(metrics, "artstore_storage_journal_recoveries_total") == 1


async def test_metrics_count_commands_files_bytes_rejections_and_latency(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    before = await scrape(service)
    good = temporary(producer, b"counted" * 100)
    bad = temporary(producer, b"lies", checksum="0" * 64)
    await producer.send(good, bad)
    await facts.wait(FileStored, file__file_id=good.file_id)
    await facts.wait(UploadRejected, file_id=bad.file_id)

    async def heartbeat_after_the_upload() -> bool:
        used = value(await scrape(service), "artstore_storage_used_bytes")
        return used >= value(before, "artstore_storage_used_bytes") + len(b"counted" * 100)

    await wait_until(heartbeat_after_the_upload, 10, message="gauges set by a later heartbeat")
    after = await scrape(service)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("artstore_storage_commands_consumed_total", topic="uploads.edit") == 2
    assert moved("artstore_storage_files_stored_total") == 1
    assert moved("artstore_storage_bytes_written_total") == len(b"counted" * 100)
    assert moved("artstore_storage_commands_rejected_total", reason="checksum_mismatch") == 1
    assert moved("artstore_storage_batch_seconds_count", topic="uploads.edit") >= 1
    assert value(after, "artstore_storage_capacity_bytes") == CAPACITY
    assert value(after, "artstore_storage_consuming_uploads") == 1


async def test_staging_away_holds_the_upload_until_it_is_back_and_dead_letters_nothing(
    service: StorageService, producer: Producer, facts: FactLog, staging_s3: OwnS3
) -> None:
    content = b"staged where nobody answers for a while"
    key = f"staging/{producer.client_id}/k"
    staging_s3.client().put_object(STAGING_BUCKET, key, io.BytesIO(content), len(content))
    command = temporary(producer, content, staged=S3StagedObject(bucket=STAGING_BUCKET, key=key))
    follow = temporary(producer, b"after the outage")
    outages_before = value(await scrape(service), "artstore_storage_outages_total")
    await staging_s3.stop()
    try:
        await producer.send(command, follow)

        def waiting_for_staging() -> bool:
            why = service.outages.reason()
            return why is not None and "staging" in why

        await wait_until(waiting_for_staging, 60, message="the worker waiting for staging")
        gauges = await scrape(service)
        assert value(gauges, "artstore_storage_dependency_away", dependency="staging") == 1
        assert value(gauges, "artstore_storage_outages_total") == outages_before + 1
    finally:
        await staging_s3.start()
    stored = await facts.wait(FileStored, within=60, file__file_id=command.file_id)
    assert stored.file.checksum == hashlib.sha256(content).hexdigest()
    await facts.wait(FileStored, within=60, file__file_id=follow.file_id)
    ids = {str(command.file_id).encode(), str(follow.file_id).encode()}
    assert not [r for r in facts.dlq if r.key in ids]
    await wait_until(lambda: service.outages.reason() is None, 30, message="outage over")
    back = await scrape(service)
    assert value(back, "artstore_storage_dependency_away", dependency="staging") == 0


async def test_a_staged_object_larger_than_declared_is_refused_once_the_stream_passes_it(
    service: StorageService, producer: Producer, facts: FactLog, staging_s3: OwnS3
) -> None:
    declared = b"seven b"
    big = declared + bytes(8 * 1024 * 1024)
    key = f"staging/{producer.client_id}/big"
    staging_s3.client().put_object(STAGING_BUCKET, key, io.BytesIO(big), len(big))
    command = temporary(producer, declared, staged=S3StagedObject(bucket=STAGING_BUCKET, key=key))
    await producer.send(command)
    rejected = await facts.wait(UploadRejected, within=60, file_id=command.file_id)
    assert rejected.reason is RejectionReason.SIZE_MISMATCH
    # Said by the stream that stopped reading, not by a comparison after the whole copy.
    assert f"more than the {len(declared)} bytes the command declared" in rejected.detail
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    assert not matching(root, f"*{command.file_id}*"), "nothing of it is left in the element"


async def test_a_v1_sidecar_is_read_migrated_and_persisted_as_v2_on_update(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    sidecar_file = root / (LEGACY_PATH + ".attr.json")
    assert "schema_version" not in json.loads(sidecar_file.read_text()), "reading rewrites nothing"
    assert service.worker is not None
    assert service.worker.catalogue.get(LEGACY_ID) is not None
    # Its uploader is unknown to the v1 sidecar: only an admin may change it.
    await producer.send(
        UpdateMetadata(file_id=LEGACY_ID, element_id=ELEMENT, description="migrated"),
        token=producer.token(role="admin"),
    )
    updated = await facts.wait(MetadataUpdated, file__file_id=LEGACY_ID)
    assert updated.file.version == 2
    assert updated.file.checksum == hashlib.sha256(LEGACY_CONTENT).hexdigest()
    document = json.loads(sidecar_file.read_text())
    assert document["schema_version"] == "2.0"
    assert document["description"] == "migrated"
    assert document["legacy_flag"] is True
    assert document["storage_path"] == LEGACY_PATH
    assert (root / LEGACY_PATH).read_bytes() == LEGACY_CONTENT


async def test_expired_temporary_files_are_deleted_by_the_ttl_sweep(
    service: StorageService, producer: Producer, facts: FactLog, clock: Clock
) -> None:
    command = temporary(producer, b"short-lived", ttl_days=1)
    keeper = temporary(producer, b"long-lived", ttl_days=30)
    await producer.send(command, keeper)
    stored = await facts.wait(FileStored, file__file_id=command.file_id)
    await facts.wait(FileStored, file__file_id=keeper.file_id)
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    assert (root / stored.file.storage_path).exists()
    assert not facts.of(FileDeleted, file_id=command.file_id)
    clock.offset = timedelta(days=2)
    try:
        deleted = await facts.wait(FileDeleted, file_id=command.file_id)
    finally:
        clock.offset = timedelta(0)
    assert deleted.reason is DeletionReason.TTL_EXPIRED
    assert deleted.storage_path == stored.file.storage_path
    assert deleted.deleted_by == f"storage:{ELEMENT}:ttl"
    assert not (root / stored.file.storage_path).exists()
    assert not (root / (stored.file.storage_path + ".attr.json")).exists()
    assert (root / ".artstore" / "deleted" / f"{command.file_id}.json").exists()
    assert not list((root / ".artstore" / "journal").glob("*.json"))
    assert not facts.of(FileDeleted, file_id=keeper.file_id)
    assert service.worker is not None
    assert service.worker.catalogue.get(command.file_id) is None
    assert service.worker.catalogue.get(keeper.file_id) is not None
