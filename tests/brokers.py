"""What the Kafka-protocol broker a test run talks to honours, asked of the broker."""

from __future__ import annotations

import secrets

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


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
