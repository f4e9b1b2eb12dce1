"""The facade's audit events on their way to ``artstore.audit``: a bounded buffer and its relay.

The facade keeps no database of its own, so its audit events (downloads, commands refused at
its door) wait in memory until the broker acknowledges them. While Kafka is away they stay
buffered and the relay retries with a capped backoff; nothing is dropped silently. When the
buffer is full, :meth:`AuditBuffer.has_room` is false and the facade refuses downloads (503)
rather than serve one it could not audit; refusals that find it full are counted in
``artstore_facade_audit_dropped_total`` (a flood of bad requests must not be able to stop every
download). See docs/decisions.md, "Audit".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from events import AuditRecorded, Envelope, OutgoingRecord

log = logging.getLogger(__name__)

PENDING = Gauge("artstore_facade_audit_pending", "Audit events waiting for the broker")
DROPPED = Counter(
    "artstore_facade_audit_dropped_total", "Audit events of refusals dropped: buffer full"
)


class RecordSender(Protocol):
    """Encodes events and sends records, returning once the broker acknowledged them all."""

    def encode(self, envelope: Envelope[Any], token: str | None = None) -> OutgoingRecord: ...

    async def send_records(self, records: Sequence[OutgoingRecord]) -> object: ...


class AuditBuffer:
    """Holds up to ``capacity`` encoded audit events until the broker has them."""

    def __init__(
        self,
        sender: RecordSender,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 30.0,
    ) -> None:
        self._sender = sender
        self._capacity = capacity
        self._batch = batch_size
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._queue: deque[OutgoingRecord] = deque()
        self._wake = asyncio.Event()
        self.published = 0
        self.failures = 0

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the broker."""
        return len(self._queue)

    def has_room(self) -> bool:
        """False once the buffer is full (Kafka has been away too long)."""
        return len(self._queue) < self._capacity

    def add(self, event: Envelope[AuditRecorded]) -> bool:
        """Queue ``event``; False (and counted) if the buffer is full."""
        if not self.has_room():
            DROPPED.inc()
            log.error("audit buffer full; audit event dropped", extra={"action": event.data.action})
            return False
        self._queue.append(self._sender.encode(event))
        PENDING.set(len(self._queue))
        self._wake.set()
        return True

    async def flush_once(self) -> int:
        """Send the oldest batch; return how many went out (raises if the broker refused)."""
        batch = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
        if not batch:
            return 0
        await self._sender.send_records(batch)
        for _ in batch:
            self._queue.popleft()
        PENDING.set(len(self._queue))
        self.published += len(batch)
        return len(batch)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop``; a failed send keeps the events and retries after a backoff."""
        delay = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                while await self.flush_once():
                    pass
            except Exception as exc:
                self.failures += 1
                delay = min(max(delay * 2, self._retry_initial), self._retry_max)
                log.warning(
                    "audit events stay buffered; the broker refused them",
                    extra={"error": str(exc), "pending": self.pending, "retry_in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            delay = 0.0
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def drain(self, timeout_s: float) -> int:
        """At shutdown: try to send what is left for up to ``timeout_s``; return what remains."""
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(timeout_s):
                while await self.flush_once():
                    pass
        if self.pending:
            log.error("audit events not delivered at shutdown", extra={"pending": self.pending})
        return self.pending
