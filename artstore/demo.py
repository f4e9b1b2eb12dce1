"""The first end-to-end check a newcomer runs: topics exist, an event goes through the broker."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass

from faststream.kafka.annotations import KafkaMessage

from artstore.settings import Settings, broker_settings
from events import (
    EventPublisher,
    ReceivedEvent,
    RetentionPolicy,
    S3StagedObject,
    Topic,
    TopicsReport,
    UploadRequested,
    create_topics,
    decode_record,
    make_broker,
    new_event,
    records_of,
)


@dataclass(frozen=True)
class RoundTrip:
    """What happened to the event the demo sent."""

    topics: TopicsReport
    topic: str
    partition: int
    offset: int
    received: ReceivedEvent
    seconds: float


async def round_trip(settings: Settings, *, timeout_s: float = 60.0) -> RoundTrip:
    """Create the topics, publish an UploadRequested and consume it back through a new group."""
    names = settings.topic_names()
    report = await create_topics(settings.kafka_bootstrap, names)
    broker = make_broker(broker_settings(settings, client_id="artstore-demo"))
    payload = _sample_upload()
    envelope = new_event(payload, source="artstore/demo")
    got: asyncio.Future[tuple[KafkaMessage, ReceivedEvent]] = (
        asyncio.get_running_loop().create_future()
    )
    topic = names.name(Topic.UPLOADS_RW)
    async with broker:
        # Subscribers added after start() run only when started explicitly, and stop cleanly.
        await broker.start()
        subscriber = broker.subscriber(
            topic,
            group_id=f"artstore-demo-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            persistent=False,
        )

        @subscriber
        async def on_upload(msg: KafkaMessage) -> None:
            (record,) = records_of(msg.raw_message)
            received = decode_record(
                record, max_bytes=settings.max_message_bytes, topic=Topic.UPLOADS_RW
            )
            await msg.ack()
            if received.envelope.id == envelope.id and not got.done():
                got.set_result((msg, received))

        await subscriber.start()
        started = time.perf_counter()
        publisher = EventPublisher(broker, names, max_message_bytes=settings.max_message_bytes)
        await publisher.publish(envelope, token="demo-token-not-verified-here")
        msg, received = await asyncio.wait_for(got, timeout_s)
        elapsed = time.perf_counter() - started
        await subscriber.stop()
    (record,) = records_of(msg.raw_message)
    return RoundTrip(report, record.topic, record.partition, record.offset, received, elapsed)


def _sample_upload() -> UploadRequested:
    content = b"hello, archive\n"
    return UploadRequested(
        file_id=uuid.uuid4(),
        original_filename="hello.txt",
        content_type="text/plain",
        file_size=len(content),
        checksum=hashlib.sha256(content).hexdigest(),
        staged=S3StagedObject(bucket="artstore-staging", key="demo/hello.txt"),
        retention_policy=RetentionPolicy.PERMANENT,
        description="The demo's first event",
        tags=["demo"],
    )


__all__ = ["RoundTrip", "round_trip"]
