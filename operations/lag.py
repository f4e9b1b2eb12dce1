"""Consumer lag per group and partition, in records and in seconds, as the broker sees it.

Lag in records is the partition's end offset minus the group's committed offset. Lag in seconds
is how long the oldest record the group has not yet consumed (the one at its committed offset)
has been waiting: zero when the group is at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from events.admin import topic_partitions

#: How long to wait for the broker to hand over the record at a committed offset.
_FETCH_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class PartitionLag:
    """How far one group is behind on one partition."""

    group: str
    topic: str
    partition: int
    committed: int
    end: int
    seconds: float

    @property
    def records(self) -> int:
        return max(0, self.end - self.committed)


async def read_lag(
    bootstrap: str, topics: Sequence[str], *, group_prefixes: Sequence[str]
) -> list[PartitionLag]:
    """Lag of every consumer group whose id starts with one of ``group_prefixes``, on every
    partition of ``topics`` it has committed an offset for."""
    partitions = await topic_partitions(bootstrap, list(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="artstore-lag")
    await admin.start()
    try:
        listed = await admin.list_consumer_groups()
        groups = sorted(
            str(g[0]) for g in listed if any(str(g[0]).startswith(p) for p in group_prefixes)
        )
        committed: dict[str, dict[TopicPartition, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
            committed[group] = {
                tp: meta.offset
                for tp, meta in offsets.items()
                if meta is not None and meta.offset >= 0
            }
    finally:
        await admin.close()
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="artstore-lag"
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        now = datetime.now(UTC)
        lags: list[PartitionLag] = []
        for group, offsets in committed.items():
            for tp, offset in sorted(offsets.items()):
                end = ends.get(tp, offset)
                waited = 0.0
                if offset < end:
                    written = await _timestamp_at(consumer, tp, offset)
                    waited = max(0.0, (now - written).total_seconds()) if written else 0.0
                lags.append(PartitionLag(group, tp.topic, tp.partition, offset, end, waited))
        return lags
    finally:
        await consumer.stop()


async def _timestamp_at(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int
) -> datetime | None:
    """When the record at ``offset`` (or the first one after it) was written."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    batches = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS, max_records=1)
    records = batches.get(tp, [])
    if not records:
        return None
    return datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
