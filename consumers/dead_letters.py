"""Dead letters: a record the projection can never apply goes to the DLQ with its reason."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from events import Failure, dead_letter


class DeadLetters:
    """Publishes a record as a dead letter (:func:`events.dead_letter`: its bytes, or a reference
    when it is too large to be sent whole) with where it came from and why it failed."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        group: str,
        service: str,
        max_bytes: int,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._group = group
        self._service = service
        self._max_bytes = max_bytes

    async def send(self, record: ConsumerRecord[Any, Any], failure: Failure) -> None:
        """Publish and wait for the broker's acknowledgement (before the offset moves past it)."""
        letter = dead_letter(
            record,
            topic=self._topic,
            group=self._group,
            failure=failure,
            service=self._service,
            max_bytes=self._max_bytes,
        )
        await self._producer.send_and_wait(
            letter.topic,
            value=letter.value,
            key=letter.key,
            headers=[(name, value.encode()) for name, value in letter.headers.items()],
        )
