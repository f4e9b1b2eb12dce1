"""Idempotent topic creation with the contract's partition counts and configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events.topics import TOPIC_SPECS, Topic, TopicNames


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
    timeout_ms: int = 15_000,
) -> TopicsReport:
    """Create every missing topic; report existing ones and partition-count mismatches.

    Safe to run any number of times and from several processes at once.
    """
    wanted = {
        names.name(topic): (partitions or {}).get(topic, spec.partitions)
        for topic, spec in TOPIC_SPECS.items()
    }
    configs = {names.name(topic): dict(spec.configs) for topic, spec in TOPIC_SPECS.items()}
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
        found = await partition_counts(admin, [n for n in wanted if n in present])
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
