"""``artstore lag`` and the consumers' lag gauges agree with the broker's end offsets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from base.consumer_lag import ConsumerLag
from base.settings import Settings
from events import Topic, create_topics

pytestmark = [pytest.mark.kafka]

WRITTEN = 10
CONSUMED = 4


@pytest.fixture(scope="module")
async def audit_partition(settings: Settings) -> TopicPartition:
    """Partition 0 of this module's audit topic, holding ``WRITTEN`` records."""
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    tp = TopicPartition(settings.topic_names().name(Topic.AUDIT), 0)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(WRITTEN):
            await producer.send_and_wait(tp.topic, f"r{i}".encode(), key=b"k", partition=0)
    finally:
        await producer.stop()
    return tp


def artstore_lag(settings: Settings) -> list[dict[str, object]]:
    env = {
        **os.environ,
        "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
    }
    done = subprocess.run(
        [sys.executable, "-m", "artstore", "lag", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


async def test_lag_report_and_gauges_match_the_broker_end_offsets(
    settings: Settings, audit_partition: TopicPartition
) -> None:
    group = f"{settings.topic_prefix}.lag-probe"
    tp = audit_partition
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        consumed = []
        while len(consumed) < CONSUMED:
            batch = await consumer.getmany(
                tp, timeout_ms=1000, max_records=CONSUMED - len(consumed)
            )
            consumed.extend(batch.get(tp, []))
        position = await consumer.position(tp)
        await consumer.commit({tp: position})
        end = (await consumer.end_offsets([tp]))[tp]

        registry = CollectorRegistry()
        gauges = ConsumerLag(registry)
        await gauges.observe(consumer, group, consumed)
        labels = {"group": group, "topic": tp.topic, "partition": "0"}
        assert registry.get_sample_value("artstore_consumer_lag_records", labels) == end - position
        waited = registry.get_sample_value("artstore_consumer_lag_seconds", labels)
        assert waited is not None
        assert waited > 0
    finally:
        await consumer.stop()

    assert (position, end) == (CONSUMED, WRITTEN)
    rows = [r for r in artstore_lag(settings) if r["group"] == group]
    assert rows == [
        {
            "group": group,
            "topic": tp.topic,
            "partition": 0,
            "committed": CONSUMED,
            "end": WRITTEN,
            "records": WRITTEN - CONSUMED,
            "seconds": rows[0]["seconds"],
        }
    ]
    assert isinstance(rows[0]["seconds"], float)
    assert rows[0]["seconds"] > 0
