"""Dead letters: a record the projection can never apply goes to the DLQ with its reason."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

#: Headers added to a dead letter; the original headers are kept as they were.
#: (The same names the storage workers use.)
SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
ERROR = "dlq_error"
REASON = "dlq_reason"
ATTEMPTS = "dlq_attempts"
SERVICE = "dlq_service"


class DeadLetters:
    """Publishes the original bytes of a record with where it came from and why it failed."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, service: str) -> None:
        self._producer = producer
        self._topic = topic
        self._service = service

    async def send(
        self, record: ConsumerRecord[Any, Any], *, reason: str, error: str, attempts: int = 1
    ) -> None:
        """Publish and wait for the broker's acknowledgement (before the offset moves past it)."""
        added = {
            SOURCE_TOPIC: record.topic,
            SOURCE_PARTITION: str(record.partition),
            SOURCE_OFFSET: str(record.offset),
            REASON: reason,
            ERROR: error[:2000],
            ATTEMPTS: str(attempts),
            SERVICE: self._service,
        }
        headers = [(k, v) for k, v in (record.headers or ()) if k not in added]
        headers += [(k, v.encode()) for k, v in added.items()]
        await self._producer.send_and_wait(
            self._topic, value=record.value, key=record.key, headers=headers
        )
