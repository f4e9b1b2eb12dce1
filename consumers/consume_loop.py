"""The projection's consumer loop: poll, decode, apply, with two batches in flight; the seek
to the stored positions on every assignment; and the process's garbage-collector tuning."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from consumers import metrics
from consumers.projector import Projection
from consumers.store import ApplyResult, ProjectionStore

log = logging.getLogger("consumers.projector")


class SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue each partition from the projection's own stored position."""

    def __init__(self, consumer: AIOKafkaConsumer, store: ProjectionStore) -> None:
        self.consumer = consumer
        self.store = store

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await seek_to_stored(self.consumer, self.store, assigned)


async def seek_to_stored(
    consumer: AIOKafkaConsumer, store: ProjectionStore, partitions: Sequence[TopicPartition]
) -> None:
    """Seek each partition to its stored position, or to the beginning if it has none."""
    stored = await store.stored_positions([(tp.topic, tp.partition) for tp in partitions])
    fresh = []
    for tp in partitions:
        position = stored.get((tp.topic, tp.partition))
        if position is None:
            fresh.append(tp)
        else:
            consumer.seek(tp, position)
    if fresh:
        await consumer.seek_to_beginning(*fresh)


async def consume(
    consumer: AIOKafkaConsumer,
    projection: Projection,
    stop: asyncio.Event,
    *,
    batch_size: int,
    poll_timeout_ms: int,
    commit_to_group: bool,
    group: str | None = None,
) -> None:
    """Poll, apply, repeat until ``stop`` is set (reporting ``group``'s lag when named).

    Two batches are in flight: while one is written (the database works on another core),
    the next is fetched and decoded. Writes stay strictly in order. If a write has to seek
    back, it is dropped whole (every partition of it is sought back, not only those that
    started late) and so is the batch decoded meanwhile: the rewind's seeks are made again
    (that batch may have been fetched from where they sought) and its other partitions are
    sought back to its first records. So the next batch starts where the rewind said and no
    partition is left past records it never applied.
    """
    pending: asyncio.Task[ApplyResult | None] | None = None
    pending_fetch: dict[TopicPartition, Any] = {}
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=poll_timeout_ms, max_records=batch_size)
            records = [record for batch in fetched.values() for record in batch]
            decoded = await projection.decode(records) if records else None
            if pending is not None:
                result = await pending
                pending = None
                if result is None:
                    # Sought back: what was fetched meanwhile is stale, and may have been
                    # fetched from where the rewind sought: seek there again.
                    projection.seek_again(consumer, decoded)
                    continue
                await _observe_lag(consumer, pending_fetch)
                if group is not None:
                    applied = [r for batch in pending_fetch.values() for r in batch]
                    await metrics.CONSUMER_LAG.observe(consumer, group, applied)
                if commit_to_group and result.positions:
                    await _commit_quietly(consumer, result)
            if decoded is not None:
                pending = asyncio.create_task(projection.apply(consumer, decoded))
                pending_fetch = fetched
    finally:
        if pending is not None:
            await pending


async def _observe_lag(consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, Any]) -> None:
    for tp in fetched:
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        position = await consumer.position(tp)
        metrics.LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))


async def _commit_quietly(consumer: AIOKafkaConsumer, result: ApplyResult) -> None:
    offsets = {
        TopicPartition(topic, partition): OffsetAndMetadata(offset, "")
        for (topic, partition), offset in result.positions.items()
    }
    try:
        await consumer.commit(offsets)
    except Exception as exc:  # the database holds the real positions; this is for lag tools
        log.debug("group commit skipped", extra={"error": str(exc)})


def tune_garbage_collector() -> None:
    """Make cyclic garbage collection cheap for a process that projects batches.

    Every fact allocates models, dicts and tuples that reference counting frees; the cycle
    collector's default (a pass every 700 net allocations, with full passes over every object
    alive, the interpreter's and libraries' included) cost about a quarter of the projector's
    CPU. Objects alive after start-up are frozen out of collection, and passes run 70 times
    less often. Call once, in the process's entry point, after start-up imports.
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
