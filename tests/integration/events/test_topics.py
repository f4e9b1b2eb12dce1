"""Topics are created with the contract's partition counts, idempotently."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from base.settings import Settings
from events import TOPIC_SPECS, Topic, TopicNames, create_topics
from events.admin import partition_counts, topic_configs
from events.topics import FRAMING_ALLOWANCE

pytestmark = [pytest.mark.kafka, pytest.mark.embedded_broker]


async def test_topics_are_created_with_their_partition_counts(
    settings: Settings, topic_prefix: str
) -> None:
    names = TopicNames(f"{topic_prefix}-create")
    report = await create_topics(settings.kafka_bootstrap, names)
    assert report.created == {names.name(t): s.partitions for t, s in TOPIC_SPECS.items()}
    assert not report.mismatched

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        counts = await partition_counts(admin, list(names.all().values()))
    finally:
        await admin.close()
    assert counts == {names.name(t): s.partitions for t, s in TOPIC_SPECS.items()}


async def test_creating_again_changes_nothing_even_concurrently(
    settings: Settings, topic_prefix: str
) -> None:
    names = TopicNames(f"{topic_prefix}-again")
    reports = await asyncio.gather(
        *(create_topics(settings.kafka_bootstrap, names) for _ in range(3))
    )
    created = [name for report in reports for name in report.created]
    assert sorted(created) == sorted(names.all().values())
    final = await create_topics(settings.kafka_bootstrap, names)
    assert final.created == {}
    assert set(final.existing) == set(names.all().values())


async def test_partition_overrides_are_honoured_and_mismatches_reported(
    settings: Settings, topic_prefix: str
) -> None:
    names = TopicNames(f"{topic_prefix}-override")
    report = await create_topics(settings.kafka_bootstrap, names, partitions={Topic.FILES: 2})
    assert report.created[names.name(Topic.FILES)] == 2
    again = await create_topics(settings.kafka_bootstrap, names)
    assert again.mismatched == {names.name(Topic.FILES): (TOPIC_SPECS[Topic.FILES].partitions, 2)}


async def test_topics_carry_their_production_configuration(
    settings: Settings, topic_prefix: str
) -> None:
    names = TopicNames(f"{topic_prefix}-configs")
    await create_topics(settings.kafka_bootstrap, names, max_message_bytes=512 * 1024)
    described = await topic_configs(settings.kafka_bootstrap, list(names.all().values()))

    for topic, spec in TOPIC_SPECS.items():
        configs = described[names.name(topic)]
        assert configs["max.message.bytes"] == str(512 * 1024 + FRAMING_ALLOWANCE), topic
        for key, value in spec.configs.items():
            assert configs[key] == value, (topic, key)
    for topic in (Topic.UPLOADS_EDIT, Topic.UPLOADS_RW, Topic.FILE_COMMANDS):
        assert described[names.name(topic)]["message.timestamp.type"] == "LogAppendTime"
    assert described[names.name(Topic.ELEMENTS)]["cleanup.policy"] == "compact"
    assert described[names.name(Topic.FILES)]["retention.ms"] == "-1"
