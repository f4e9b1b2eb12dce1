"""The live projector against the real broker and PostgreSQL: facts become rows exactly once."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from base.settings import Settings
from consumers.settings import ProjectorSettings
from events import (
    AuditRecorded,
    CapacityStatus,
    DeletionReason,
    ElementHeartbeat,
    ElementRegistered,
    FileDeleted,
    FileStored,
    LocalBackend,
    MetadataUpdated,
    Mode,
    ModeChanged,
    RejectionReason,
    S3StagedObject,
    Topic,
    UploadRejected,
    UploadRequested,
    encode,
    new_event,
)
from tests.helpers import wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FactPublisher,
    fetch,
    fetchval,
    make_record,
    running_projector,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def projector_settings(redis_namespace: str) -> ProjectorSettings:
    return ProjectorSettings(
        group_id=f"{redis_namespace}projection",
        cache_generation_key=f"{redis_namespace}generation",
        batch_size=500,
    )


async def test_facts_become_rows_and_never_move_backwards(
    topics: Settings, projector_settings: ProjectorSettings
) -> None:
    settings = topics
    url = settings.database_url
    first = make_record(filename="annual_report.pdf", description="Budget", tags=["finance"])
    updated = first.model_copy(
        update={
            "version": 2,
            "description": "Budget, revised",
            "updated_at": first.updated_at + timedelta(minutes=1),
        }
    )
    doomed = make_record(filename="draft.txt")
    upload_id = uuid.uuid4()
    rejected_id = uuid.uuid4()
    command = UploadRequested(
        file_id=upload_id,
        original_filename="incoming.csv",
        file_size=10,
        checksum="0" * 64,
        staged=S3StagedObject(bucket="staging", key="k"),
    )
    async with FactPublisher(settings) as pub, running_projector(settings, projector_settings):
        await pub.publish(
            [
                FileStored(file=first),
                MetadataUpdated(file=updated, updated_by="ops"),
                FileStored(file=first),  # a re-announcement of the old state
                FileStored(file=doomed),
                FileDeleted(
                    file_id=doomed.file_id,
                    element_id="se-01",
                    storage_path=doomed.storage_path,
                    reason=DeletionReason.REQUESTED,
                    deleted_by="ops",
                    deleted_at=BASE_TIME + timedelta(hours=1),
                ),
                FileStored(file=doomed),  # must not bring it back
                command,
                UploadRejected(
                    file_id=rejected_id,
                    reason=RejectionReason.CHECKSUM_MISMATCH,
                    detail="sha256 differs",
                    rejected_at=BASE_TIME,
                ),
                ElementRegistered(
                    element_id="se-01",
                    mode=Mode.RW,
                    backend=LocalBackend(root="/srv/se-01"),
                    priority=1,
                    capacity_bytes=10_000,
                    free_bytes=9_000,
                    worker="worker-a",
                    started_at=BASE_TIME,
                ),
                ModeChanged(
                    element_id="se-01",
                    from_mode=Mode.RW,
                    to_mode=Mode.RO,
                    changed_by="ops",
                    reason="retire",
                    changed_at=BASE_TIME + timedelta(minutes=5),
                ),
                ElementHeartbeat(
                    element_id="se-01",
                    mode=Mode.RW,
                    capacity_bytes=10_000,
                    used_bytes=2_000,
                    free_bytes=8_000,
                    file_count=2,
                    status=CapacityStatus.OK,
                    accepting_uploads=True,
                    sent_at=BASE_TIME + timedelta(minutes=1),  # older than the mode change
                ),
                AuditRecorded(
                    action="token.issued",
                    actor="sa_dev_x_00000000",
                    subject="sa_dev_x_00000000",
                    outcome="success",
                    occurred_at=BASE_TIME,
                ),
            ]
        )
        await pub.send_raw(settings.topic_names().name(Topic.FILES), b"{not json", b"k")
        # A storage worker gave up on an upload command: the upload is "failed".
        dead = UploadRequested(
            file_id=uuid.uuid4(),
            original_filename="doomed.bin",
            file_size=1,
            checksum="1" * 64,
            staged=S3StagedObject(bucket="staging", key="gone"),
        )
        letter = encode(new_event(dead, source="tests"), settings.topic_names(), max_bytes=10**6)
        await pub.producer.send_and_wait(
            settings.topic_names().name(Topic.DLQ),
            value=letter.value,
            key=letter.key,
            headers=[
                *((k, v.encode()) for k, v in letter.headers.items()),
                ("dlq_source_topic", letter.topic.encode()),
                ("dlq_error", b"staging unreachable after 5 attempts"),
            ],
        )

        async def settled() -> bool:
            return (
                await fetchval(
                    url, "SELECT coalesce(sum(events_applied), 0) FROM projection_offsets"
                )
                # 12 facts and commands, the bad record, the injected dead letter, and the
                # projector's own dead letter (read back from the DLQ, ignored).
                == 15
            )

        await wait_until(settled, timeout=30, message="all 15 records applied")
        row = (await fetch(url, "SELECT * FROM files WHERE file_id = $1", first.file_id))[0]
        assert (row["version"], row["description"]) == (2, "Budget, revised")
        gone = (await fetch(url, "SELECT * FROM files WHERE file_id = $1", doomed.file_id))[0]
        assert gone["deleted_at"] is not None
        assert gone["version"] == 1
        statuses = dict(await fetch(url, "SELECT file_id, status FROM uploads"))
        assert statuses == {
            upload_id: "queued",
            rejected_id: "rejected",
            dead.file_id: "failed",
            first.file_id: "stored",
            doomed.file_id: "stored",
        }
        element = (await fetch(url, "SELECT * FROM elements"))[0]
        assert element["mode"] == "ro"
        assert element["free_bytes"] == 8_000
        assert json.loads(element["backend"]) == {"kind": "local", "root": "/srv/se-01"}
        assert await fetchval(url, "SELECT count(*) FROM audit_log") == 1
        # The search cache heard about the new files.
        client = aioredis.from_url(settings.redis_url)
        assert int(await client.get(projector_settings.cache_generation_key) or 0) >= 1
        await client.aclose()

    # The undecodable record went to the DLQ with its reason, and the partition moved on.
    dlq = AIOKafkaConsumer(
        settings.topic_names().name(Topic.DLQ),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dlq.start()
    try:
        batch = await dlq.getmany(timeout_ms=10_000)
        letters = [
            r
            for records in batch.values()
            for r in records
            if dict(r.headers).get("dlq_service") == b"artstore-projector"
        ]
        assert [r.value for r in letters] == [b"{not json"]
        headers = dict(letters[0].headers)
        assert headers["dlq_reason"] == b"not_json"
    finally:
        await dlq.stop()
