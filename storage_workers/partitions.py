"""The part of a Kafka consumer the worker uses: its partitions, seeking, pausing, committing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

from aiokafka import TopicPartition
from faststream.kafka.annotations import KafkaMessage


class PartitionConsumer(Protocol):
    """aiokafka's ``AIOKafkaConsumer``, as far as the worker uses it."""

    def assignment(self) -> set[TopicPartition]: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...

    def paused(self) -> set[TopicPartition]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...


def consumer_of(message: KafkaMessage) -> PartitionConsumer:
    """The consumer that fetched ``message``. FastStream declares only the calls it makes
    itself; the object is aiokafka's consumer, which has all of :class:`PartitionConsumer`."""
    return cast(PartitionConsumer, message.consumer)
