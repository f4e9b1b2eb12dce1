"""The dead-letter topic read from its start to its end, filtered and counted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from events import DeadLetterHeaders, read_headers
from events.admin import topic_partitions
from events.dead_letters import decoded_headers


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic: where it sits there, and what it says."""

    topic: str
    partition: int
    offset: int
    written_at: datetime
    key: bytes
    value: bytes
    headers: dict[str, str]
    dead: DeadLetterHeaders

    @property
    def id(self) -> str:
        """``partition/offset`` in the dead-letter topic: how `dlq show` names it."""
        return f"{self.partition}/{self.offset}"

    def payload(self) -> Any:
        """The value as JSON where it is JSON, else as text (bytes that are not UTF-8 replaced)."""
        text = self.value.decode("utf-8", "replace")
        try:
            return json.loads(text)
        except ValueError:
            return text


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operator asks for; an unset field matches everything."""

    source_topic: str | None = None
    group: str | None = None
    error: str | None = None
    """Matches the reason, the error class or a part of the error message."""
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        dead = letter.dead
        when = dead.last_failed_at or letter.written_at
        if self.source_topic and self.source_topic not in (dead.source_topic, _logical(dead)):
            return False
        if self.group and self.group != dead.consumer_group:
            return False
        if self.error and not (
            self.error in (dead.reason, dead.error_class) or self.error in dead.error
        ):
            return False
        if self.since and when < self.since:
            return False
        return not (self.until and when > self.until)


def _logical(dead: DeadLetterHeaders) -> str:
    """The source topic without its deployment prefix (``uploads.rw``)."""
    return dead.source_topic.split(".", 1)[-1]


def counts(letters: Iterable[DeadLetter]) -> Counter[tuple[str, str, str]]:
    """How many dead letters per (source topic, consumer group, reason)."""
    return Counter((d.dead.source_topic, d.dead.consumer_group, d.dead.reason) for d in letters)


async def read_dead_letters(
    bootstrap: str, dlq_topic: str, selection: DeadLetterFilter | None = None
) -> list[DeadLetter]:
    """Every dead letter now in ``dlq_topic`` (start to end offsets, as the broker reports them
    when asked) that ``selection`` matches, in partition and offset order."""
    partitions = await topic_partitions(bootstrap, [dlq_topic])
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="artstore-dlq"
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        wanted = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        letters: list[DeadLetter] = []
        while wanted:
            batches = await consumer.getmany(*wanted, timeout_ms=500)
            for tp in wanted:
                # The end is what ListOffsets said or, if higher, the watermark the fetch saw:
                # the embedded broker may answer ListOffsets with an end a moment old.
                wanted[tp] = max(wanted[tp], consumer.highwater(tp) or 0)
            for tp, records in batches.items():
                letters.extend(_letter(r) for r in records if r.offset < wanted[tp])
            for tp in list(wanted):
                if await consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
    finally:
        await consumer.stop()
    chosen = [d for d in letters if selection is None or selection.matches(d)]
    return sorted(chosen, key=lambda d: (d.partition, d.offset))


def _letter(record: Any) -> DeadLetter:
    headers = decoded_headers(record)
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        written_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        key=record.key or b"",
        value=record.value or b"",
        headers=headers,
        dead=read_headers(headers),
    )
