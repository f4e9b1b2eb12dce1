"""A batch the projection drops leaves no partition past records it never applied.

A batch that starts past one partition's stored position is dropped whole: its other
partitions were consumed too, and if nothing sought them back, the consumer would fetch on
from past their records, which a quiet partition (no fact after its last one) never brings
back. The batch fetched meanwhile is dropped as well, and may have been fetched after the
rewind's seek. No services: a stand-in consumer records the seeks, a stand-in store refuses
or applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition

from consumers.projector import DecodedBatch, Projection
from consumers.store import ApplyResult, PositionedEvent, PositionMismatch, plan_batch
from events import TopicNames

FILES = "t.artstore.files"
ELEMENTS = "t.artstore.elements"


class Consumer:
    """What the projection asks of a consumer when it seeks back."""

    def __init__(self, *partitions: TopicPartition) -> None:
        self.assigned = set(partitions)
        self.positions: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def beginning_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)


class Store:
    """Refuses a batch whose partitions start past the given positions, else applies it."""

    def __init__(self, positions: Mapping[tuple[str, int], int]) -> None:
        self.positions = dict(positions)

    async def apply(
        self, events: Sequence[PositionedEvent], *, plan: Any = None, tolerate_gaps: Any = None
    ) -> ApplyResult:
        first: dict[tuple[str, int], int] = {}
        for e in events:
            first[(e.topic, e.partition)] = min(
                first.get((e.topic, e.partition), e.offset), e.offset
            )
        late = {
            key: self.positions[key]
            for key, offset in first.items()
            if offset > self.positions.get(key, offset)
        }
        if late:
            raise PositionMismatch(late)
        result = ApplyResult(applied=len(events))
        for e in events:
            result.positions[(e.topic, e.partition)] = e.offset + 1
        return result


class NoDeadLetters:
    async def send(self, record: Any, failure: Any) -> None:
        raise AssertionError("nothing here is dead-lettered")


def batch(*events: tuple[str, int, int]) -> DecodedBatch:
    positioned = [PositionedEvent(t, p, o) for t, p, o in events]
    return DecodedBatch([], positioned, plan_batch(positioned))


def projection(store: Store) -> Projection:
    return Projection(
        store,  # type: ignore[arg-type]
        TopicNames("t.artstore"),
        NoDeadLetters(),
        max_message_bytes=1 << 20,
    )


async def test_a_dropped_batch_seeks_back_every_partition_it_held() -> None:
    files, elements = TopicPartition(FILES, 3), TopicPartition(ELEMENTS, 0)
    consumer = Consumer(files, elements)
    # The elements partition starts late (12 stored, 13 served); the files records at 1..2
    # were fine, but they are dropped with the batch.
    store = Store({(FILES, 3): 1, (ELEMENTS, 0): 12})
    dropped = batch((ELEMENTS, 0, 13), (FILES, 3, 1), (FILES, 3, 2), (ELEMENTS, 0, 14))
    result = await projection(store).apply(consumer, dropped)  # type: ignore[arg-type]
    assert result is None
    assert consumer.positions == {elements: 12, files: 1}


async def test_the_batch_fetched_meanwhile_is_sought_back_too() -> None:
    files, other, elements = (
        TopicPartition(FILES, 3),
        TopicPartition(FILES, 4),
        TopicPartition(ELEMENTS, 0),
    )
    consumer = Consumer(files, other, elements)
    store = Store({(FILES, 3): 1, (FILES, 4): 7, (ELEMENTS, 0): 12})
    applying = projection(store)
    dropped = batch((ELEMENTS, 0, 13), (FILES, 3, 1))
    assert await applying.apply(consumer, dropped) is None  # type: ignore[arg-type]
    # Fetched meanwhile: the elements partition again from where the rewind sought (so the
    # consumer is past 12 again), files[3] on from the dropped records, files[4] first seen.
    meanwhile = batch((ELEMENTS, 0, 13), (FILES, 3, 2), (FILES, 4, 7), (FILES, 4, 8))
    consumer.positions.clear()
    applying.seek_again(consumer, meanwhile)  # type: ignore[arg-type]
    assert consumer.positions == {elements: 12, files: 1, other: 7}


async def test_a_partition_no_longer_assigned_is_left_to_its_new_owner() -> None:
    elements = TopicPartition(ELEMENTS, 0)
    consumer = Consumer(elements)  # files[3] went to another member in a rebalance
    store = Store({(FILES, 3): 1, (ELEMENTS, 0): 12})
    dropped = batch((ELEMENTS, 0, 13), (FILES, 3, 1))
    assert await projection(store).apply(consumer, dropped) is None  # type: ignore[arg-type]
    assert consumer.positions == {elements: 12}
