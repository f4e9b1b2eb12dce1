"""Replaying the topics into fresh tables reproduces the live projection, and swaps in live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from base.settings import Settings
from consumers.migrate import PROJECTION_TABLES
from consumers.replay import replay
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
    RejectionReason,
    S3StagedObject,
    UploadRejected,
    UploadRequested,
)
from tests.factories import fixity_failed
from tests.helpers import wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FactPublisher,
    fetch,
    fetchval,
    make_record,
    running_projector,
)

pytestmark = [
    pytest.mark.embedded_broker,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
]


def facts(count: int, *, offset: int = 0) -> list[object]:
    """A mix of every kind of fact the projection reads, with updates and deletes."""
    out: list[object] = [
        ElementRegistered(
            element_id="se-01",
            mode=Mode.RW,
            backend=LocalBackend(root="/srv/se-01"),
            priority=1,
            capacity_bytes=10**9,
            free_bytes=10**9,
            worker="w",
            started_at=BASE_TIME,
        )
    ]
    for i in range(offset, offset + count):
        record = make_record(
            filename=f"file-{i}.txt",
            description=f"document number {i}",
            tags=[f"t{i % 7}"],
            custom={"n": i},
            created=BASE_TIME + timedelta(seconds=i),
        )
        out.append(
            UploadRequested(
                file_id=record.file_id,
                original_filename=record.original_filename,
                file_size=record.file_size,
                checksum=record.checksum,
                staged=S3StagedObject(bucket="staging", key=str(record.file_id)),
            )
        )
        out.append(FileStored(file=record))
        if i % 3 == 0:
            newer = record.model_copy(
                update={
                    "version": 2,
                    "description": f"revised {i}",
                    "updated_at": record.updated_at + timedelta(hours=1),
                }
            )
            out.append(MetadataUpdated(file=newer, updated_by="ops"))
        if i % 10 == 0:
            out.append(
                FileDeleted(
                    file_id=record.file_id,
                    element_id="se-01",
                    storage_path=record.storage_path,
                    reason=DeletionReason.REQUESTED,
                    deleted_by="ops",
                    deleted_at=BASE_TIME + timedelta(days=1),
                )
            )
        if i % 25 == 0:
            out.append(
                fixity_failed(
                    record.file_id,
                    record.storage_path,
                    detected_at=BASE_TIME + timedelta(days=2),
                )
            )
            out.append(
                UploadRejected(
                    file_id=uuid.uuid4(),
                    reason=RejectionReason.CHECKSUM_MISMATCH,
                    detail="bad",
                    rejected_at=BASE_TIME,
                )
            )
        if i % 5 == 0:
            out.append(
                ElementHeartbeat(
                    element_id="se-01",
                    mode=Mode.RW,
                    capacity_bytes=10**9,
                    used_bytes=i,
                    free_bytes=10**9 - i,
                    file_count=i,
                    status=CapacityStatus.OK,
                    accepting_uploads=True,
                    sent_at=BASE_TIME + timedelta(seconds=i),
                )
            )
            out.append(
                AuditRecorded(
                    action="token.issued",
                    subject=f"s{i}",
                    outcome="success",
                    occurred_at=BASE_TIME,
                )
            )
    return out


async def _differences(url: str, left: str, right: str) -> dict[str, int]:
    out = {}
    for table in PROJECTION_TABLES:
        a, b = f'"{left}".{table}', f'"{right}".{table}'
        out[table] = await fetchval(
            url,
            f"SELECT count(*) FROM ((SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) "
            f"UNION ALL (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})) AS d",
        )
    return out


async def _applied(url: str, schema: str = "public") -> int:
    return int(
        await fetchval(
            url, f'SELECT coalesce(sum(events_applied), 0) FROM "{schema}".projection_offsets'
        )
    )


async def test_replay_equals_live_then_swaps_in_while_the_projector_runs(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> None:
    settings = topics
    url = settings.database_url
    projector = ProjectorSettings(
        group_id=f"{redis_namespace}projection",
        cache_generation_key=f"{redis_namespace}generation",
        batch_size=300,
    )
    first = facts(600)
    later = facts(200, offset=600)
    async with FactPublisher(settings) as pub, running_projector(settings, projector):
        await pub.publish(first)  # type: ignore[arg-type]
        await wait_until(lambda: _wait_applied(url, len(first)), timeout=60)

        fresh = await replay(settings, projector, swap=False)
        assert fresh.events == len(first)
        assert await _differences(url, "public", fresh.schema) == dict.fromkeys(
            PROJECTION_TABLES, 0
        )
        assert await fetchval(url, "SELECT count(*) FROM files") == 600

        # Now for real: swap while the live projector keeps consuming new facts.
        await pub.publish(later[:100])  # type: ignore[arg-type]
        swapped = await replay(settings, projector, swap=True)
        assert swapped.swapped
        assert swapped.retired_schema is not None
        await pub.publish(later[100:])  # type: ignore[arg-type]
        total = len(first) + len(later)
        await wait_until(lambda: _wait_applied(url, total), timeout=60)
        assert await _applied(url) == total  # nothing lost or doubled across the swap
        assert await fetchval(url, "SELECT count(*) FROM files") == 800
        assert await fetchval(url, "SELECT count(*) FROM files WHERE deleted_at IS NOT NULL") == 80
        # A third replay of the whole history still equals the (swapped-in) live tables.
        final = await replay(settings, projector, swap=False)
        assert await _differences(url, "public", final.schema) == dict.fromkeys(
            PROJECTION_TABLES, 0
        )


async def _wait_applied(url: str, count: int) -> bool:
    return await _applied(url) >= count


async def test_replay_from_a_time_rebuilds_only_what_happened_since(topics: Settings) -> None:
    settings = topics
    url = settings.database_url
    projector = ProjectorSettings(batch_size=300)
    before = [FileStored(file=make_record(filename=f"before-{i}.txt")) for i in range(30)]
    after = [FileStored(file=make_record(filename=f"after-{i}.txt")) for i in range(20)]
    async with FactPublisher(settings) as pub:
        await pub.publish(before)
        # Records carry their producer's timestamp: every "before" record is older than
        # `since`, and every "after" record is produced once the clock has passed it.
        since = datetime.now(UTC) + timedelta(milliseconds=5)
        await wait_until(lambda: datetime.now(UTC) > since + timedelta(milliseconds=5), timeout=5)
        await pub.publish(after)

    report = await replay(settings, projector, from_time=since, swap=False)

    names = {
        row["original_filename"]
        for row in await fetch(url, f'SELECT original_filename FROM "{report.schema}".files')
    }
    assert names == {f"after-{i}.txt" for i in range(20)}
    assert report.events == len(after)
