"""Strict decoding of what a subscriber receives (single records and batches)."""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord

from events.codec import ReceivedEvent, decode
from events.topics import Topic


def records_of(raw_message: Any) -> tuple[ConsumerRecord[Any, Any], ...]:
    """The consumer records behind a FastStream message (one, or a batch)."""
    if isinstance(raw_message, tuple):
        return raw_message
    return (raw_message,)


def decode_record(
    record: ConsumerRecord[Any, Any], *, max_bytes: int, topic: Topic | None = None
) -> ReceivedEvent:
    """Decode one consumer record; raises ``EventDecodeError`` naming what is wrong."""
    return decode(
        record.value, key=record.key, headers=record.headers, max_bytes=max_bytes, topic=topic
    )
