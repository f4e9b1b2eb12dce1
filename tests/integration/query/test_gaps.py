"""The projection never skips a fact: a gap in a partition's offsets is accepted only when the
broker has proved it (retention removed the records: its log-start offset is past the gap)."""

from __future__ import annotations

import asyncpg
import pytest

from artstore.stack.postgres_server import asyncpg_dsn
from base.settings import Settings
from consumers.store import PositionedEvent, PositionMismatch, ProjectionStore

pytestmark = [pytest.mark.postgres]

TOPIC = "t.artstore.files"


async def counts(settings: Settings, partition: int) -> tuple[int, int, int]:
    """A partition's position, records applied and offsets gone past without a record."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        row = await conn.fetchrow(
            "SELECT next_offset, events_applied, gap_offsets FROM projection_offsets "
            "WHERE topic = $1 AND partition = $2",
            TOPIC,
            partition,
        )
    finally:
        await conn.close()
    assert row is not None
    return row["next_offset"], row["events_applied"], row["gap_offsets"]


def batch(*offsets: int, partition: int) -> list[PositionedEvent]:
    return [PositionedEvent(TOPIC, partition, offset) for offset in offsets]


async def test_a_gap_without_proof_is_refused_however_often_it_comes(migrated: Settings) -> None:
    store = await ProjectionStore.connect(migrated.database_url)
    try:
        await store.apply(batch(0, 1, 2, partition=0))
        for _ in range(3):  # the old rule accepted the second sight of the same gap
            with pytest.raises(PositionMismatch) as refused:
                await store.apply(batch(7, 8, partition=0))
            assert refused.value.seek_to == {(TOPIC, 0): 3}
        with pytest.raises(PositionMismatch):
            await store.apply(batch(7, 8, partition=0), tolerate_gaps={(TOPIC, 0): 6})
        assert await store.stored_positions([(TOPIC, 0)]) == {(TOPIC, 0): 3}
    finally:
        await store.close()


async def test_a_gap_the_broker_proves_is_accepted_up_to_its_log_start(
    migrated: Settings,
) -> None:
    store = await ProjectionStore.connect(migrated.database_url)
    try:
        await store.apply(batch(0, 1, partition=1))
        result = await store.apply(batch(5, 6, partition=1), tolerate_gaps={(TOPIC, 1): 5})
        assert result.applied == 2
        assert await store.stored_positions([(TOPIC, 1)]) == {(TOPIC, 1): 7}
        with pytest.raises(PositionMismatch):  # the proof covered 2..4, not 7..9
            await store.apply(batch(10, partition=1), tolerate_gaps={(TOPIC, 1): 5})
        assert await counts(migrated, 1) == (7, 4, 3)  # position = applied + gone past
    finally:
        await store.close()


async def test_a_hole_inside_a_batch_is_applied_up_to_the_hole_only(migrated: Settings) -> None:
    store = await ProjectionStore.connect(migrated.database_url)
    try:
        await store.apply(batch(0, 1, 2, partition=2))
        result = await store.apply(batch(3, 4, 6, 7, partition=2))
        assert result.applied == 2
        assert result.holes == {(TOPIC, 2): 5}
        assert await store.stored_positions([(TOPIC, 2)]) == {(TOPIC, 2): 5}
        proven = await store.apply(batch(6, 7, partition=2), tolerate_gaps={(TOPIC, 2): 6})
        assert (proven.applied, proven.holes) == (2, {})
        assert await counts(migrated, 2) == (8, 7, 1)
    finally:
        await store.close()
