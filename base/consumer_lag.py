"""Every consumer's lag as Prometheus gauges, per group, topic and partition.

In records: the partition's high watermark (as the last fetch reported it) minus the consumer's
position. In seconds: zero when the consumer is at the end; otherwise the age of the last record
it consumed from that partition — the next record waiting was written at or after it, so this
bounds from above how long the oldest waiting record has waited. ``artstore lag`` computes the
exact figure from the broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

_LABELS = ["group", "topic", "partition"]


class ConsumerLag:
    """The lag gauges of the consumers in one process (or one registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records = Gauge(
            "artstore_consumer_lag_records",
            "Records between a consumer group's position and the partition's end.",
            _LABELS,
            registry=registry,
        )
        self.seconds = Gauge(
            "artstore_consumer_lag_seconds",
            "How long records have waited for a consumer group (0 at the end of the partition).",
            _LABELS,
            registry=registry,
        )
        self._last_written: dict[tuple[str, TopicPartition], float] = {}

    async def observe(
        self, consumer: AIOKafkaConsumer | Any, group: str, consumed: Iterable[Any] = ()
    ) -> None:
        """Update the gauges for every partition ``consumer`` holds, after it consumed
        ``consumed`` (records with ``topic``, ``partition`` and ``timestamp`` in ms)."""
        for record in consumed:
            tp = TopicPartition(record.topic, record.partition)
            key = (group, tp)
            self._last_written[key] = max(self._last_written.get(key, 0.0), record.timestamp / 1000)
        now = datetime.now(UTC).timestamp()
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            behind = max(highwater - await consumer.position(tp), 0)
            labels = (group, tp.topic, str(tp.partition))
            self.records.labels(*labels).set(behind)
            written = self._last_written.get((group, tp))
            if behind == 0:
                self.seconds.labels(*labels).set(0)
            elif written is not None:
                self.seconds.labels(*labels).set(max(now - written, 0.0))
