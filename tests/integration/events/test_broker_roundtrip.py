"""Every event type goes through the real broker and comes back intact, with key and headers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faststream.kafka.annotations import KafkaMessage

from base.settings import Settings, broker_settings
from events import (
    SPECS,
    EventPublisher,
    EventTooLarge,
    FileStored,
    Outgoing,
    RetentionPolicy,
    Topic,
    UploadRequested,
    create_topics,
    decode_record,
    make_broker,
    new_event,
    records_of,
)
from events.capabilities import supports_idempotent_producer
from tests.factories import sample
from tests.helpers import event_ids, read_events, wait_for_assignment

pytestmark = [pytest.mark.kafka, pytest.mark.embedded_broker]


@pytest.fixture(scope="module")
async def topics(settings: Settings) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())


@pytest.fixture
async def publisher(settings: Settings, topics: None):
    broker = make_broker(broker_settings(settings, client_id="test-publisher"))
    async with broker:
        await broker.start()
        yield EventPublisher(
            broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )


async def test_every_event_type_round_trips_with_key_and_headers(
    settings: Settings, publisher: EventPublisher
) -> None:
    payloads = [sample(spec.model) for spec in SPECS]
    payloads.append(
        sample(UploadRequested).model_copy(
            update={"retention_policy": RetentionPolicy.PERMANENT, "ttl_days": None}
        )
    )
    outgoing = []
    for payload in payloads:
        spec = next(s for s in SPECS if isinstance(payload, s.model))
        token = f"token-for-{uuid.uuid4().hex}" if spec.kind == "command" else None
        outgoing.append(Outgoing(new_event(payload, source="test/roundtrip"), token))
    metas = await publisher.publish_many(outgoing)
    assert len(metas) == len(outgoing)

    names = settings.topic_names()
    wanted = {o.envelope.id for o in outgoing}
    received = await read_events(settings, Topic, until=lambda got: wanted <= event_ids(got))
    by_id = {event.envelope.id: (record, event) for record, event in received}

    for item in outgoing:
        record, received = by_id[item.envelope.id]
        spec = next(s for s in SPECS if s.type == item.envelope.type)
        assert received.envelope == item.envelope
        assert record.key == spec.key_of(item.envelope.data).encode()
        assert record.topic == names.name(spec.route(item.envelope.data))
        assert received.headers["ce_type"] == spec.type
        assert received.headers["correlation_id"] == item.envelope.correlation_id
        assert received.token == item.token

    upload_topics = {
        by_id[o.envelope.id][0].topic
        for o in outgoing
        if o.envelope.type.startswith("artstore.upload.requested")
    }
    assert upload_topics == {names.name(Topic.UPLOADS_EDIT), names.name(Topic.UPLOADS_RW)}


async def test_a_batch_with_one_oversized_event_publishes_nothing(
    settings: Settings, publisher: EventPublisher
) -> None:
    good = new_event(sample(FileStored), source="test")
    big_file = sample(FileStored).file.model_copy(
        update={"metadata": {"blob": "x" * (settings.max_message_bytes + 1)}}
    )
    huge = new_event(FileStored(file=big_file), source="test")
    with pytest.raises(EventTooLarge):
        await publisher.publish_many([Outgoing(good), Outgoing(huge)])
    marker = new_event(sample(FileStored), source="test")
    await publisher.publish(marker)

    received = await read_events(
        settings, [Topic.FILES], until=lambda got: marker.id in event_ids(got)
    )
    assert good.id not in event_ids(received)
    assert huge.id not in event_ids(received)


async def _consume_until(
    broker, settings: Settings, topic: str, group_args: dict, publisher, event
) -> list[tuple[int, str]]:
    """Join the group, publish ``event``, ack everything until it arrives, leave the group."""
    seen: list[tuple[int, str]] = []
    arrived = asyncio.Event()
    sub = broker.subscriber(topic, persistent=False, **group_args)

    @sub
    async def handle(msg: KafkaMessage) -> None:
        (record,) = records_of(msg.raw_message)
        received = decode_record(record, max_bytes=settings.max_message_bytes)
        seen.append((record.partition, received.envelope.id))
        await msg.ack()
        if received.envelope.id == event.id:
            arrived.set()

    await sub.start()
    await wait_for_assignment(sub)
    await publisher.publish(event)
    await asyncio.wait_for(arrived.wait(), 30)
    await sub.stop()
    return seen


async def test_manual_commit_resumes_a_group_after_the_last_committed_record(
    settings: Settings, publisher: EventPublisher
) -> None:
    """What a member acknowledged is not delivered again to the next member of the group."""
    topic = settings.topic_names().name(Topic.ELEMENTS)
    # A short session bounds how long the second member waits if the first one's leave is slow.
    group_args = {
        "group_id": f"resume-{uuid.uuid4().hex[:8]}",
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
    }
    on_elements = {s.type: s for s in SPECS}
    first, second = (
        new_event(sample(on_elements[f"artstore.element.{what}.v1"].model), source="test")
        for what in ("registered", "heartbeat")
    )
    assert first.subject == second.subject  # same key, hence the same partition
    broker = make_broker(broker_settings(settings, client_id="test-consumer"))
    async with broker:
        await broker.start()
        seen = await _consume_until(broker, settings, topic, group_args, publisher, first)
        again = await _consume_until(broker, settings, topic, group_args, publisher, second)

    partition = next(p for p, eid in seen if eid == first.id)
    assert [eid for p, eid in again if p == partition] == [second.id]


async def test_the_idempotent_producer_is_chosen_exactly_where_the_broker_supports_it(
    settings: Settings, topics: None
) -> None:
    supported = supports_idempotent_producer(settings.kafka_bootstrap)
    assert broker_settings(settings, client_id="probe").idempotent is supported

    topic = settings.topic_names().name(Topic.AUDIT)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
    try:
        # The client asks for a producer id while starting (or, on some versions, at first send).
        await producer.start()
        await asyncio.wait_for(producer.send_and_wait(topic, b"x", key=b"k"), 30)
        worked = True
    except KafkaError:
        worked = False
    finally:
        await producer.stop()
    assert worked is supported
