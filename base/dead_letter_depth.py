"""How many records the dead-letter topic holds, as a Prometheus gauge per partition.

The depth is the partition's end offset minus its earliest offset, as the broker reports them:
the letters written and not yet removed by retention (a redriven letter stays on the topic;
``artstore dlq list`` tells which were sent back). The console's pipeline page counts the same.
A watcher asks the broker every ``interval_s`` seconds; a broker that does not answer leaves the
last figures and is asked again next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from events.admin import topic_partitions

log = logging.getLogger(__name__)


class DeadLetterDepth:
    """The depth gauge of the dead-letter topic (in one process, or one registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.records = Gauge(
            "artstore_dlq_records",
            "Records the dead-letter topic holds: end offset minus earliest offset.",
            ["topic", "partition"],
            registry=registry,
        )

    async def measure(self, bootstrap: str, topic: str) -> int:
        """Ask the broker once, set the gauge for every partition, return the total."""
        partitions = await topic_partitions(bootstrap, [topic])
        if not partitions:
            return 0
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="artstore-dlq-depth")
        await consumer.start()
        try:
            return self._set(
                partitions,
                await consumer.beginning_offsets(partitions),
                await consumer.end_offsets(partitions),
            )
        finally:
            await consumer.stop()

    def _set(
        self,
        partitions: list[TopicPartition],
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
    ) -> int:
        total = 0
        for tp in partitions:
            held = max(ends[tp] - starts[tp], 0)
            self.records.labels(tp.topic, str(tp.partition)).set(held)
            total += held
        return total

    async def watch(
        self, bootstrap: str, topic: str, stop: asyncio.Event, *, interval_s: float
    ) -> None:
        """Measure every ``interval_s`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.measure(bootstrap, topic), timeout=max(interval_s, 10))
            except Exception as exc:  # the broker may be away: keep the last figures
                log.warning(
                    "dead-letter depth not measured", extra={"topic": topic, "error": repr(exc)}
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)


DEAD_LETTER_DEPTH = DeadLetterDepth()
"""The process's gauge, in the default registry."""
