"""The pipeline as the broker sees it: lag per consumer group, and the dead letters waiting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from base.settings import Settings
from events import Topic
from events.admin import topic_partitions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupLag:
    """One consumer group: how far behind the end of each topic it reads."""

    group_id: str
    lag_by_topic: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.lag_by_topic.values())


@dataclass(frozen=True)
class PipelineState:
    """Lag of every group of this deployment, and how many records the dead-letter topic holds."""

    groups: list[GroupLag] = field(default_factory=list)
    dead_letters: int | None = None
    dead_letter_topic: str = ""
    problem: str | None = None


class LagReader:
    """Asks the broker, with a bound on how long a page waits for it."""

    def __init__(self, settings: Settings, *, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s

    async def read(self) -> PipelineState:
        """Lag per group; a state naming the problem when the broker does not answer in time."""
        topics = self._settings.topic_names()
        dlq = topics.name(Topic.DLQ)
        try:
            return await asyncio.wait_for(self._read(), self._timeout_s)
        except (TimeoutError, Exception) as exc:  # the page still shows, with the reason
            log.warning("pipeline lag unavailable", extra={"error": str(exc)})
            return PipelineState(
                dead_letter_topic=dlq, problem=f"the broker did not answer: {exc or 'timeout'}"
            )

    @contextlib.asynccontextmanager
    async def _clients(self) -> AsyncIterator[tuple[AIOKafkaAdminClient, AIOKafkaConsumer]]:
        bootstrap = self._settings.kafka_bootstrap
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="artstore-console")
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="artstore-console")
        await admin.start()
        try:
            await consumer.start()
            try:
                yield admin, consumer
            finally:
                await consumer.stop()
        finally:
            await admin.close()

    async def _read(self) -> PipelineState:
        names = self._settings.topic_names()
        ours = names.all()
        dlq = names.name(Topic.DLQ)
        async with self._clients() as (admin, consumer):
            partitions = await topic_partitions(self._settings.kafka_bootstrap, list(ours.values()))
            ends = await consumer.end_offsets(partitions) if partitions else {}
            dlq_parts = [tp for tp in partitions if tp.topic == dlq]
            starts = await consumer.beginning_offsets(dlq_parts) if dlq_parts else {}
            dead = sum(ends[tp] - starts[tp] for tp in dlq_parts) if dlq_parts else 0
            groups = []
            for group_id in sorted(await self._group_ids(admin)):
                committed = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
                lag: dict[str, int] = {}
                for tp, meta in committed.items():
                    if meta is None or meta.offset < 0 or tp not in ends:
                        continue
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends[tp] - meta.offset)
                if lag:
                    groups.append(GroupLag(group_id, dict(sorted(lag.items()))))
        return PipelineState(groups, dead, dlq)

    async def _group_ids(self, admin: AIOKafkaAdminClient) -> list[str]:
        prefix = self._settings.topic_prefix
        listed = await admin.list_consumer_groups()
        return [
            str(group[0])
            for group in listed
            if str(group[0]).startswith(f"{prefix}.") or str(group[0]).startswith("artstore-")
        ]
