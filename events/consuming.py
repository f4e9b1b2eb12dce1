"""Strict decoding of what a subscriber receives (single records and batches)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
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


def _readable(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    """A copy of ``record`` whose header values all decode as UTF-8 (invalid bytes replaced)."""
    headers = [
        (name, (raw or b"").decode("utf-8", "replace").encode()) for name, raw in record.headers
    ]
    return replace(record, headers=headers)


async def parse_any_record(raw: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """A FastStream parser that never refuses a record (single or batch).

    FastStream's own parser decodes every header value as UTF-8 and fails on anything else,
    before a handler sees the record: the record would be neither answered nor dead-lettered.
    This one hands FastStream header values it can read, and keeps the records exactly as
    received in ``raw_message``, where the handlers' strict decoding (:func:`decode_record`)
    finds them and names what is wrong.
    """
    readable = tuple(_readable(r) for r in raw) if isinstance(raw, tuple) else _readable(raw)
    message = await original(readable)
    message.raw_message = raw
    return message


async def raw_body(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """A FastStream decoder that leaves the body as bytes: handlers decode the records
    themselves, strictly, and FastStream's JSON guess fails on values that are not JSON (or
    nest too deeply for Python's JSON parser)."""
    return message.body
