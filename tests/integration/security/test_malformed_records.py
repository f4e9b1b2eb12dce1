"""Every record on every consumed topic, however malformed, ends as a rejection fact or a DLQ
entry with a reason, and the partition moves on: no record stops a consumer.

Against the storage worker (uploads, file and element commands) and the projector of a running
pipeline. The message limit is lowered so that "too large to dead-letter whole" fits under
every broker's own limit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from base.settings import Settings
from events import (
    ChangeMode,
    Mode,
    RetentionPolicy,
    Topic,
    UpdateMetadata,
    UploadRequested,
    encode,
    new_event,
)
from events import dead_letters as dlq
from tests.factories import sample
from tests.helpers import consumer_from_beginning, wait_until
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

LIMIT = 64 * 1024
PARTITION = 0
Raw = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


@pytest.fixture(scope="module")
def small_limit(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_message_bytes": LIMIT})


@pytest.fixture(scope="module")
async def pipeline(small_limit: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(small_limit, redis_namespace) as running:
        yield running


@dataclass(frozen=True)
class Sent:
    """Where a record landed."""

    what: str
    topic: str
    partition: int
    offset: int


def _command(topic: Topic, element_id: str) -> tuple[bytes, bytes, dict[str, str], str]:
    """A valid command for ``topic`` (no token): key, value, headers, subject."""
    payload: Any
    if topic is Topic.UPLOADS_RW:
        upload = sample(UploadRequested)
        payload = upload.model_copy(
            update={"retention_policy": RetentionPolicy.PERMANENT, "ttl_days": None}
        )
        subject = str(payload.file_id)
    elif topic is Topic.FILE_COMMANDS:
        payload = UpdateMetadata(file_id=uuid.uuid4(), element_id=element_id, tags=["x"])
        subject = str(payload.file_id)
    else:
        payload = ChangeMode(element_id=element_id, target_mode=Mode.RO, reason="test")
        subject = element_id
    from events import TopicNames

    record = encode(new_event(payload, source="tests"), TopicNames("t"), max_bytes=10**6)
    return record.key, record.value, record.headers, subject


def _malformed(topic: Topic, element_id: str) -> dict[str, Raw]:
    """Each case built from a command of its own, so that one answer never stands for another."""

    def fresh() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        key, value, headers, _ = _command(topic, element_id)
        return key, value, [(k, v.encode()) for k, v in headers.items()]

    cases: dict[str, Raw] = {}
    key, _, plain = fresh()
    cases["value not UTF-8"] = (key, b"\xff\xfe{\x80 not utf-8", plain)
    _, value, plain = fresh()
    cases["key not UTF-8"] = (b"\xff\xfe\x80", value, plain)
    key, value, plain = fresh()
    cases["header not UTF-8"] = (key, value, [*plain, ("correlation_id", b"\xff\x80\xfe")])
    key, value, _ = fresh()
    cases["no headers"] = (key, value, [])
    _, value, plain = fresh()
    cases["wrong key"] = (b"someone-else", value, plain)
    _, value, plain = fresh()
    cases["no key"] = (None, value, plain)
    key, _, plain = fresh()
    cases["50,000 ["] = (key, b"[" * 50_000, plain)
    key, _, plain = fresh()
    cases["too large to dead-letter whole"] = (key, b"x" * (LIMIT + 1024), plain)
    return cases


async def _produce(
    settings: Settings,
    topic: Topic,
    records: dict[str, Raw],
) -> list[Sent]:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    sent = []
    try:
        name = settings.topic_names().name(topic)
        for what, (key, value, headers) in records.items():
            meta = await producer.send_and_wait(
                name, value=value, key=key, headers=headers, partition=PARTITION
            )
            sent.append(Sent(what, name, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return sent


async def _read(
    settings: Settings, topics: list[Topic], done: Callable[[list[ConsumerRecord[Any, Any]]], bool]
) -> list[ConsumerRecord[Any, Any]]:
    consumer = await consumer_from_beginning(settings, topics)
    seen: list[ConsumerRecord[Any, Any]] = []
    try:
        async with asyncio.timeout(60):
            while not done(seen):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    seen.extend(batch)
    finally:
        await consumer.stop()
    return seen


def _letters(
    seen: list[ConsumerRecord[Any, Any]], service: str
) -> dict[tuple[str, int, int], dict[str, bytes]]:
    out = {}
    for record in seen:
        headers = dict(record.headers)
        if headers.get(dlq.SERVICE) != service.encode():
            continue
        where = (
            headers[dlq.SOURCE_TOPIC].decode(),
            int(headers[dlq.SOURCE_PARTITION]),
            int(headers[dlq.SOURCE_OFFSET]),
        )
        out[where] = {**headers, "value": record.value or b""}
    return out


def _rejected_subjects(seen: list[ConsumerRecord[Any, Any]]) -> set[str]:
    subjects = set()
    for record in seen:
        try:
            doc = json.loads(record.value)
        except (ValueError, RecursionError):
            continue
        if isinstance(doc, dict) and "rejected" in str(doc.get("type", "")):
            subjects.add(str(doc.get("subject")))
    return subjects


@pytest.mark.parametrize("topic", [Topic.UPLOADS_RW, Topic.FILE_COMMANDS, Topic.ELEMENT_COMMANDS])
async def test_the_storage_worker_answers_every_malformed_command_and_moves_on(
    pipeline: Pipeline, small_limit: Settings, topic: Topic
) -> None:
    malformed = _malformed(topic, pipeline.element_id)
    subjects = {what: _subject_of(value) for what, (_, value, _) in malformed.items()}
    key, value, headers, follow_up = _command(topic, pipeline.element_id)
    sent = await _produce(small_limit, topic, malformed)
    # A valid command behind them on the same partition: answered only if the worker moved on.
    await _produce(
        small_limit,
        topic,
        {"follow-up": (key, value, [(k, v.encode()) for k, v in headers.items()])},
    )

    def answered(seen: list[ConsumerRecord[Any, Any]]) -> bool:
        letters = _letters(seen, "artstore-storage")
        rejected = _rejected_subjects(seen)
        return follow_up in rejected and all(
            (s.topic, s.partition, s.offset) in letters or subjects[s.what] in rejected
            for s in sent
        )

    seen = await _read(small_limit, [Topic.DLQ, Topic.FILES, Topic.ELEMENTS], answered)
    letters = _letters(seen, "artstore-storage")
    for s in sent:
        letter = letters.get((s.topic, s.partition, s.offset))
        if letter is not None:
            assert letter[dlq.REASON], s.what
            assert letter[dlq.ERROR], s.what
    big = next(s for s in sent if s.what == "too large to dead-letter whole")
    reference = letters[(big.topic, big.partition, big.offset)]
    assert reference[dlq.REFERENCE] == b"true"
    assert json.loads(reference["value"])["offset"] == big.offset
    assert b"too_large" in reference[dlq.ERROR]
    nested = next(s for s in sent if s.what == "50,000 [")
    assert b"too deeply" in letters[(nested.topic, nested.partition, nested.offset)][dlq.ERROR]


def _subject_of(value: bytes | None) -> str | None:
    try:
        doc = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None
    return str(doc.get("subject")) if isinstance(doc, dict) else None


async def test_the_projector_dead_letters_every_malformed_fact_and_moves_on(
    pipeline: Pipeline, small_limit: Settings
) -> None:
    malformed = _malformed(Topic.FILES, pipeline.element_id)
    sent = await _produce(small_limit, Topic.FILES, malformed)
    last = max(s.offset for s in sent)
    name = small_limit.topic_names().name(Topic.FILES)

    async def moved_on() -> bool:
        conn = await asyncpg.connect(small_limit.database_url.replace("+asyncpg", ""))
        try:
            position = await conn.fetchval(
                "SELECT next_offset FROM projection_offsets WHERE topic = $1 AND partition = $2",
                name,
                PARTITION,
            )
        finally:
            await conn.close()
        return position is not None and position > last

    await wait_until(moved_on, 60, message="the projector passed every malformed record")
    seen = await _read(
        small_limit,
        [Topic.DLQ],
        lambda seen: all(
            (s.topic, s.partition, s.offset) in _letters(seen, "artstore-projector") for s in sent
        ),
    )
    letters = _letters(seen, "artstore-projector")
    for s in sent:
        assert letters[(s.topic, s.partition, s.offset)][dlq.REASON], s.what
    big = next(s for s in sent if s.what == "too large to dead-letter whole")
    assert letters[(big.topic, big.partition, big.offset)][dlq.REFERENCE] == b"true"
