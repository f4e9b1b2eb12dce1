"""Putting records back on their topic: a failure is retried by reading the records again.

A consumer that fails to finish a record must not go on to commit a later one of the same
partition: that commit would carry the group's offset past the unfinished record, and nothing
would ever read it again. So whatever failed is sought back to, and the next fetch reads it
again; the handlers are idempotent, so a record whose effect was already durable is answered
again rather than applied twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiokafka import TopicPartition

from storage_workers.admission import TransientFailure
from storage_workers.backends import BackendError, ServiceFault
from storage_workers.outages import Outages
from storage_workers.partitions import PartitionConsumer
from storage_workers.worker import Record

log = logging.getLogger(__name__)

#: Failures worth retrying in place a few times before the record counts as undeliverable.
RETRIED_IN_PLACE = (BackendError, TransientFailure, OSError)


def first_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """The lowest offset of ``records`` in each partition."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    return first


def seek_back(
    consumer: PartitionConsumer, offsets: Mapping[TopicPartition, int]
) -> list[TopicPartition]:
    """Seek each partition this consumer still owns to ``offsets``; the partitions sought.

    A partition no longer assigned (a rebalance took it) needs nothing: its new owner starts
    from the group's committed offset, which never passed an unfinished record."""
    assigned = consumer.assignment()
    sought = []
    for tp, offset in offsets.items():
        if tp in assigned:
            consumer.seek(tp, offset)
            sought.append(tp)
    return sought


class Backoff:
    """Exponential delays between attempts, reset by a success."""

    def __init__(self, first_s: float, max_s: float = 10.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (and count this failure)."""
        self.failures += 1
        return float(min(self.first_s * 2 ** (self.failures - 1), self.max_s))

    def succeeded(self) -> None:
        """Start again from the first delay."""
        self.failures = 0


async def retry_in_place(
    action: Callable[[], Awaitable[None]],
    attempts: int,
    backoff_s: float,
    outages: Outages | None = None,
    fault_window_s: float = 0.0,
) -> None:
    """Run ``action``; retry :data:`RETRIED_IN_PLACE` failures with bounded backoff; raise the
    last one when ``attempts`` are spent. Any other exception propagates at once.

    With ``outages``, each failure first asks whether a dependency is away: then
    :class:`~storage_workers.outages.DependencyAway` is raised at once (the record is held
    until the outage ends, no attempt spent on it).

    A :class:`~storage_workers.backends.ServiceFault` (the service failed the request on its
    side although its probe answers, as one does for a while after it starts again) spends no
    attempt until ``fault_window_s`` have passed since the first one."""
    delays = Backoff(backoff_s)
    spent = 0
    first_fault: float | None = None
    while True:
        try:
            await action()
            return
        except RETRIED_IN_PLACE as exc:
            if outages is not None:
                await outages.confirm(exc)
            patient = False
            if isinstance(exc, ServiceFault):
                now = time.monotonic()
                first_fault = now if first_fault is None else first_fault
                patient = now - first_fault < fault_window_s
            if not patient:
                spent += 1
                if spent >= attempts:
                    raise
            log.warning("transient failure, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delays.next_delay())
