"""The projector waits out a database that died under it; it never stops by itself.

A PostgreSQL server killed mid-transaction (SIGKILL) can leave the client's connection
mid-operation; the rollback on the way out of the transaction then raises asyncpg's
``InternalClientError`` ("cannot switch to state 15; another operation (2) is in progress")
rather than a connection error. The kill-and-restart trial that restarts PostgreSQL by SIGKILL
saw exactly that stop the projector, leaving stored files unindexed. The store below is the real
one, failing its first transaction the way that connection did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from base.settings import Settings
from consumers.projector import DecodedBatch, Projection
from consumers.store import ApplyResult, PositionedEvent, ProjectionStore, plan_batch
from consumers.write_plan import WritePlan

pytestmark = [pytest.mark.postgres]

TOPIC = "t.artstore.files"


class ServerDiedMidTransaction(ProjectionStore):
    """The real store; its first transaction fails as one cut short by a killed server does."""

    failures = 0

    async def apply(
        self,
        events: Sequence[PositionedEvent],
        *,
        plan: WritePlan | None = None,
        tolerate_gaps: Mapping[tuple[str, int], int] | None = None,
    ) -> ApplyResult:
        if self.failures == 0:
            self.failures += 1
            raise asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            )
        return await super().apply(events, plan=plan, tolerate_gaps=tolerate_gaps)


class NoDeadLetters:
    async def send(
        self, record: ConsumerRecord[Any, Any], *, reason: str, error: str, attempts: int = 1
    ) -> None:
        raise AssertionError(f"nothing here is dead-lettered: {reason}: {error}")


async def test_a_transaction_cut_short_by_a_dead_server_is_retried(migrated: Settings) -> None:
    pool = await ProjectionStore.connect(migrated.database_url)
    store = ServerDiedMidTransaction(pool.pool)
    projection = Projection(
        store,
        migrated.topic_names(),
        NoDeadLetters(),
        max_message_bytes=migrated.max_message_bytes,
        max_backoff_s=0.01,
    )
    events = [PositionedEvent(TOPIC, 0, offset) for offset in range(3)]
    consumer = AIOKafkaConsumer(bootstrap_servers=migrated.kafka_bootstrap)  # never started
    try:
        result = await projection.apply(consumer, DecodedBatch([], events, plan_batch(events)))
        assert result is not None
        assert result.applied == 3
        assert store.failures == 1
        assert await store.stored_positions([(TOPIC, 0)]) == {(TOPIC, 0): 3}
    finally:
        await store.close()
