"""The peer table kept from the elements topic: who is alive, in which mode, accepting uploads.

Every worker reads the topic from a little before now (without a consumer group) and notes
each ElementRegistered and ElementHeartbeat in its :class:`~storage_workers.placement.PeerTable`,
dated when it was sent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaConsumer

import events
from events import ElementHeartbeat, ElementRegistered
from events.admin import topic_partitions
from storage_workers.placement import PeerTable

log = logging.getLogger(__name__)


class PeerWatch:
    """Reads the elements topic into :attr:`table`."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        element_id: str,
        peer_timeout: float,
        max_message_bytes: int,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.element_id = element_id
        self.peer_timeout = peer_timeout
        self.max_message_bytes = max_message_bytes
        self.table = PeerTable()
        self._consumer: AIOKafkaConsumer | None = None

    def alive(self, element_id: str) -> bool:
        """Whether ``element_id`` was heard from within the peer timeout (this one always is)."""
        if element_id == self.element_id:
            return True
        now = time.monotonic()
        return any(
            p.element_id == element_id and now - p.seen_at <= self.peer_timeout
            for p in self.table.all()
        )

    async def start(self) -> None:
        """Read the topic from a little before now and catch up, so the first placement
        decision knows who is alive."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False
        )
        await consumer.start()
        partitions = await topic_partitions(self.bootstrap_servers, [self.topic])
        consumer.assign(partitions)
        since = int((time.time() - 2 * self.peer_timeout) * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])
        self._consumer = consumer
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
            await self.read(timeout_ms=200)

    async def read(self, timeout_ms: int) -> None:
        """Note what arrived within ``timeout_ms``."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        now = time.monotonic()
        for records in batches.values():
            for record in records:
                with contextlib.suppress(events.EventDecodeError):
                    event = events.decode_record(record, max_bytes=self.max_message_bytes)
                    if isinstance(event.data, ElementHeartbeat | ElementRegistered):
                        age = time.time() - record.timestamp / 1000
                        self.table.heard(event.data, now - max(0.0, age))

    async def run(self) -> None:
        """Keep reading until cancelled."""
        while True:
            try:
                await self.read(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading peers failed")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
