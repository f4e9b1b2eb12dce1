"""The worker's circuit breaker: an outage holds records; only a record's own failure counts."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from storage_workers.backends import BackendError, ServiceFault
from storage_workers.outages import DependencyAway, Outages
from storage_workers.redelivery import retry_in_place, seek_back

A = TopicPartition("uploads", 0)
B = TopicPartition("uploads", 1)


class Dependency:
    """A dependency that answers or not, as the test says; counts the probes."""

    def __init__(self) -> None:
        self.up = True
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if not self.up:
            raise ConnectionRefusedError(111, "Connection refused")


class Consumer:
    """What the breaker uses of a Kafka consumer: assignment, seek, pause, resume."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.positions: dict[TopicPartition, int] = {}
        self.paused_partitions: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_partitions |= set(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_partitions -= set(tps)


class FailingStore:
    """A store that always fails the way the storage's client does; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        raise BackendError("S3 request failed")


async def test_a_failure_while_a_dependency_is_away_holds_the_record_spending_no_attempt() -> None:
    storage = Dependency()
    outages = Outages({"element storage": storage.probe})
    store = FailingStore()
    storage.up = False
    with pytest.raises(DependencyAway) as held:
        await retry_in_place(store, attempts=5, backoff_s=0.001, outages=outages)
    assert store.calls == 1
    assert "element storage" in str(held.value)
    reason = outages.reason()
    assert reason is not None
    assert "element storage" in reason
    assert "Connection refused" in reason


async def test_a_failure_while_every_dependency_answers_is_the_records_own() -> None:
    storage = Dependency()
    outages = Outages({"element storage": storage.probe})
    store = FailingStore()
    with pytest.raises(BackendError):
        await retry_in_place(store, attempts=3, backoff_s=0.001, outages=outages)
    assert store.calls == 3
    assert storage.probes == 3
    assert outages.reason() is None


class FaultyService:
    """A service whose probe answers but which fails the first ``faults`` requests on its side
    (as SeaweedFS does while its volume server registers again); counts the calls."""

    def __init__(self, faults: int) -> None:
        self.faults = faults
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.faults:
            raise ServiceFault("S3 request failed: code: InternalError")


async def test_faults_on_the_services_side_spend_no_attempt_within_the_window() -> None:
    outages = Outages({"staging": Dependency().probe})
    service = FaultyService(faults=7)
    await retry_in_place(service, attempts=3, backoff_s=0.001, outages=outages, fault_window_s=60)
    assert service.calls == 8
    assert outages.reason() is None


async def test_faults_on_the_services_side_count_once_the_window_is_over() -> None:
    outages = Outages({"staging": Dependency().probe})
    service = FaultyService(faults=7)
    with pytest.raises(ServiceFault):
        await retry_in_place(
            service, attempts=3, backoff_s=0.001, outages=outages, fault_window_s=0
        )
    assert service.calls == 3


async def test_held_consumers_seek_back_pause_and_resume_when_every_dependency_answers() -> None:
    database = Dependency()
    changes: list[dict[str, str]] = []
    outages = Outages(
        {"database": database.probe},
        first_delay_s=0.01,
        max_delay_s=0.02,
        on_change=lambda away: changes.append(dict(away)),
    )
    consumer = Consumer(A, B)
    database.up = False
    with pytest.raises(DependencyAway):
        await outages.confirm(OSError("connection refused"))
    seek_back(consumer, {A: 7, TopicPartition("uploads", 9): 3})
    outages.pause(consumer)
    assert consumer.positions == {A: 7}  # a partition it no longer owns is left alone
    assert consumer.paused() == {A, B}
    runner = asyncio.create_task(outages.run())
    try:
        await asyncio.sleep(0.1)
        assert consumer.paused() == {A, B}  # still away: still paused
        probes_while_away = database.probes
        assert probes_while_away >= 2
        database.up = True
        for _ in range(100):
            if not consumer.paused():
                break
            await asyncio.sleep(0.01)
        assert consumer.paused() == set()
        assert outages.reason() is None
    finally:
        runner.cancel()
    assert changes[0].keys() == {"database"}
    assert changes[-1] == {}


async def test_a_probe_that_never_answers_counts_as_away() -> None:
    async def hangs() -> None:
        await asyncio.sleep(10)

    outages = Outages({"signing keys": hangs}, probe_timeout_s=0.05)
    away = await outages.diagnose()
    assert away == {"signing keys": "no answer within 0.05 s"}
