"""Which Kafka-protocol broker a test run talks to, and what that broker honours."""

from __future__ import annotations

import os
import secrets

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from artstore.stack import KafkaBroker, broker_of
from artstore.stack.state import StateStore, resolve_state_dir

_NAMES = {KafkaBroker.APACHE: "Apache Kafka", KafkaBroker.TANSU: "Tansu"}
#: The broker a run uses when the environment gives its address (not the stack).
GIVEN_BROKER_VARIABLE = "ARTSTORE_TEST_KAFKA_BROKER"


def describe_broker() -> str:
    """``Apache Kafka 4.1.1 at 127.0.0.1:40001``, from the stack's records or the environment."""
    given = os.environ.get("ARTSTORE_KAFKA_BOOTSTRAP")
    if given:
        kind = os.environ.get(GIVEN_BROKER_VARIABLE, "a broker of unknown kind")
        return f"{kind} at {given} (given by the environment)"
    record = StateStore(resolve_state_dir()).load().services.get("kafka")
    if record is None:
        return "the stack's (not started yet)"
    details = record.details()
    storage = f", {details['storage']} storage" if "storage" in details else ""
    name = _NAMES[broker_of(record)]
    return f"{name} {details.get('version', '(version unknown)')} at {record.url}{storage}"


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
    return meta.timestamp != 1_000
