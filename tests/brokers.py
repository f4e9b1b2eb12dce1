"""What the Kafka-protocol broker a test run talks to honours, asked of the broker."""

from __future__ import annotations

import asyncio
import secrets

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError


async def stamps_record_time(bootstrap: str) -> bool:
    """Whether the broker stamps records with its own time on a ``LogAppendTime`` topic.

    Asked by writing one back-dated record to a throw-away topic: Apache Kafka replaces the
    producer's timestamp; the embedded broker keeps it.
    """
    topic = f"probe-{secrets.token_hex(6)}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            meta = await producer.send_and_wait(topic, b"probe", timestamp_ms=1_000)
        finally:
            await producer.stop()
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    return bool(meta.timestamp != 1_000)


async def delete_topics(bootstrap: str, prefix: str, timeout_s: float = 30.0) -> None:
    """Delete every topic whose name starts with ``prefix`` (best effort: a broker that is
    gone or slow leaves them, and the run goes on)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            names = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if names:
                await admin.delete_topics(names)
    except (KafkaError, OSError, TimeoutError):
        return  # the broker went away with the test's topics: nothing left to tidy
    finally:
        await admin.close()
