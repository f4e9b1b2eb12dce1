"""Idempotent topic creation with the contract's partition counts and configs."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from events.topics import TOPIC_SPECS, Topic, TopicNames, max_message_config

#: The default largest event value (``ARTSTORE_MAX_MESSAGE_BYTES``'s default).
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


class TopicCreationFailed(RuntimeError):
    """The broker refused to create a topic for a reason other than "it exists"."""


@dataclass
class TopicsReport:
    """What ``create_topics`` found and did."""

    created: dict[str, int] = field(default_factory=dict)
    existing: dict[str, int] = field(default_factory=dict)
    mismatched: dict[str, tuple[int, int]] = field(default_factory=dict)
    """name -> (partitions wanted, partitions found)."""


async def create_topics(
    bootstrap_servers: str,
    names: TopicNames,
    *,
    partitions: Mapping[Topic, int] | None = None,
    replication_factor: int = 1,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    timeout_ms: int = 15_000,
) -> TopicsReport:
    """Create every missing topic with its production configuration; report existing ones and
    partition-count mismatches. Returns once the broker describes every topic with its partitions
    (a broker may acknowledge a creation before its metadata shows the new partitions).

    Safe to run any number of times and from several processes at once.
    """
    wanted = {
        names.name(topic): (partitions or {}).get(topic, spec.partitions)
        for topic, spec in TOPIC_SPECS.items()
    }
    configs = {
        names.name(topic): {**spec.configs, **max_message_config(max_message_bytes)}
        for topic, spec in TOPIC_SPECS.items()
    }
    report = TopicsReport()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [name for name in wanted if name not in present]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=wanted[name],
                        replication_factor=replication_factor,
                        topic_configs=configs[name],
                    )
                    for name in missing
                ],
                timeout_ms=timeout_ms,
            )
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    report.created[name] = wanted[name]
                elif code != TopicAlreadyExistsError.errno:
                    message = rest[0] if rest and rest[0] else f"error code {code}"
                    raise TopicCreationFailed(f"could not create topic {name}: {message}")
                present.add(name)
        found = await _visible_partition_counts(
            admin, [n for n in wanted if n in present], set(report.created), timeout_ms
        )
        for name, count in found.items():
            if name not in report.created:
                report.existing[name] = count
            if count != wanted[name]:
                report.mismatched[name] = (wanted[name], count)
    finally:
        await admin.close()
    return report


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count per topic, as the broker reports it."""
    if not names:
        return {}
    described = await admin.describe_topics(names)
    return {item["topic"]: len(item["partitions"]) for item in described}


async def _visible_partition_counts(
    admin: AIOKafkaAdminClient, names: list[str], created: set[str], timeout_ms: int
) -> dict[str, int]:
    """Partition counts, once every just-created topic shows at least one partition."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    while True:
        found = await partition_counts(admin, names)
        pending = sorted(name for name in created if not found.get(name))
        if not pending:
            return found
        if loop.time() >= deadline:
            raise TopicCreationFailed(
                f"the broker created {', '.join(pending)} but still describes no partitions "
                f"for them after {timeout_ms} ms"
            )
        await asyncio.sleep(0.05)


async def topic_configs(bootstrap_servers: str, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configuration as the broker describes it (name -> value)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    described: dict[str, dict[str, str]] = {}
    for response in responses:
        for error_code, message, _type, name, entries in response.resources:
            if error_code:
                raise TopicCreationFailed(f"could not describe topic {name}: {message}")
            described[name] = {entry[0]: entry[1] for entry in entries}
    return described


async def topic_partitions(bootstrap_servers: str, names: list[str]) -> list[TopicPartition]:
    """Every partition of the named topics that exist, in order, as the broker describes them.

    A consumer's own metadata knows only the topics it has asked about (Apache Kafka answers a
    client's first metadata request with no topics), so readers that assign partitions learn them
    here instead of from ``partitions_for_topic``.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        wanted = [name for name in names if name in present]
        counts = await partition_counts(admin, wanted)
    finally:
        await admin.close()
    return [TopicPartition(name, p) for name in wanted for p in range(counts.get(name, 0))]
