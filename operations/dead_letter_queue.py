"""The dead-letter topic read from its start to its end, filtered and counted."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from events import DeadLetterHeaders, Topic, read_headers
from events.admin import topic_partitions
from events.dead_letters import decoded_headers

#: Largest partition number and offset an id may name (Kafka's offsets are signed 64-bit).
MAX_PARTITION = 100_000
MAX_OFFSET = 2**63 - 1
_ID = re.compile(r"^([0-9]{1,6})/([0-9]{1,19})$")
#: Deepest JSON payload shown as JSON (deeper is shown as its text).
MAX_DEPTH = 64
#: How long one poll waits for records, and the broker for a fetch with nothing new in it.
_POLL_MS = 100
#: Polls after which a partition whose fetch never answered counts as read to its listed end.
_BLIND_POLLS = 5


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
        """The value as JSON where it is JSON (nested at most ``MAX_DEPTH`` deep), else as text
        (bytes that are not UTF-8 replaced)."""
        text = self.value.decode("utf-8", "replace")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return text
        return value if _depth(value) <= MAX_DEPTH else text


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operator asks for; an unset field matches everything."""

    source_topic: str | None = None
    group: str | None = None
    error: str | None = None
    """Matches the reason, the error class or a part of the error message."""
    since: datetime | None = None
    until: datetime | None = None
    ids: frozenset[str] = frozenset()
    """Only these letters (``partition/offset``), when given."""

    def matches(self, letter: DeadLetter) -> bool:
        dead = letter.dead
        when = dead.last_failed_at or letter.written_at
        if when.tzinfo is None:  # a header written by hand, without a time zone
            when = when.replace(tzinfo=UTC)
        if self.ids and letter.id not in self.ids:
            return False
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
    """The source topic without its deployment prefix (``uploads.rw``), whatever dots the
    prefix holds; the whole name when it is not one of the contract's topics."""
    for topic in Topic:
        if dead.source_topic.endswith(f".{topic.value}"):
            return topic.value
    return dead.source_topic


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                pending.extend((child, level + 1) for child in item)
    return deepest


def parse_letter_id(text: str) -> tuple[int, int] | None:
    """``partition/offset`` as two numbers, or None when ``text`` is not such an id."""
    match = _ID.match(text)
    if match is None:
        return None
    partition, offset = int(match.group(1)), int(match.group(2))
    if partition > MAX_PARTITION or offset > MAX_OFFSET:
        return None
    return partition, offset


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
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        wanted = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        letters: list[DeadLetter] = []
        polls = 0
        while wanted:
            batches = await consumer.getmany(*wanted, timeout_ms=_POLL_MS)
            polls += 1
            for tp in wanted:
                # The end is what ListOffsets said or, if higher, the watermark the fetch saw:
                # the embedded broker may answer ListOffsets with an end a moment old.
                wanted[tp] = max(wanted[tp], consumer.highwater(tp) or 0)
            for tp, records in batches.items():
                letters.extend(_letter(r) for r in records if r.offset < wanted[tp])
            for tp in list(wanted):
                fetched = consumer.highwater(tp) is not None or polls >= _BLIND_POLLS
                if fetched and await consumer.position(tp) >= wanted[tp]:
                    del wanted[tp]
    finally:
        await consumer.stop()
    chosen = [d for d in letters if selection is None or selection.matches(d)]
    return sorted(chosen, key=lambda d: (d.partition, d.offset))


async def read_dead_letter(
    bootstrap: str, dlq_topic: str, partition: int, offset: int
) -> DeadLetter | None:
    """The dead letter at ``partition``/``offset`` of ``dlq_topic``, or None when there is none
    (no such partition, an offset past the end, or one the topic no longer retains)."""
    partitions = await topic_partitions(bootstrap, [dlq_topic])
    tp = TopicPartition(dlq_topic, partition)
    if tp not in partitions:
        return None
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if offset < start:
            return None
        consumer.seek(tp, offset)
        polls = 0
        while True:
            batch = await consumer.getmany(tp, timeout_ms=_POLL_MS, max_records=1)
            polls += 1
            end = max(end, consumer.highwater(tp) or 0)
            for record in batch.get(tp, []):
                return _letter(record) if record.offset == offset else None
            fetched = consumer.highwater(tp) is not None or polls >= _BLIND_POLLS
            if fetched and offset >= end:
                return None
    finally:
        await consumer.stop()


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    # A short fetch wait: a partition with nothing new answers at once, with its end offset.
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        client_id="artstore-dlq",
        fetch_max_wait_ms=_POLL_MS,
    )


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
