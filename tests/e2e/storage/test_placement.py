"""Sequential fill by priority with two rw elements, hand-over when full and when a worker dies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import ElementFull, ElementHeartbeat, FileStored, Mode
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.e2e.storage.worker_process import WorkerProcess
from tests.helpers import wait_until
from tests.storage_support import TEST_SESSION_TIMEOUT_MS, FactLog, Producer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

FILE = 1000


def rw_config(settings: Settings, jwks: Path, element_id: str, priority: int, capacity: int):
    return WorkerConfig(
        element_id=element_id,
        mode=Mode.RW,
        priority=priority,
        root=settings.data_dir / element_id,
        jwks_file=jwks,
        token_issuer=TestSigner().issuer,
        capacity_bytes=capacity,
        floor_full_percent=0,
        floor_full_bytes=2 * FILE,
        floor_critical_percent=0,
        floor_critical_bytes=0,
        floor_warning_percent=0,
        floor_warning_bytes=0,
        heartbeat_interval_s=0.5,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )


@pytest.fixture
async def second(
    settings: Settings, jwks_file: Path, topics: None
) -> AsyncIterator[StorageService]:
    svc = StorageService(settings, rw_config(settings, jwks_file, "se-b", 1, 10**6))
    yield svc
    await svc.stop()


async def test_sequential_fill_then_hand_over_when_full(
    settings: Settings,
    jwks_file: Path,
    producer: Producer,
    facts: FactLog,
    second: StorageService,
) -> None:
    first = StorageService(settings, rw_config(settings, jwks_file, "se-a", 0, 10 * FILE))
    await first.start()
    try:
        await wait_until(lambda: first.consuming_uploads, 30, message="se-a consuming")
        await second.start()
        await wait_until(lambda: second.peers.all(), 30, message="se-b hears se-a")
        commands = [producer.upload(bytes([i]) * FILE, f"f{i}.bin") for i in range(12)]
        await producer.send(*commands)
        stored = [
            await facts.wait(FileStored, within=60, file__file_id=c.file_id) for c in commands
        ]
    finally:
        await first.stop()
    where = [s.file.element_id for s in stored]
    assert where.count("se-a") == 8
    assert where.count("se-b") == 4
    assert facts.of(ElementFull, element_id="se-a")
    assert second.consuming_uploads


async def test_killing_the_current_worker_moves_uploads_to_the_next(
    settings: Settings,
    jwks_file: Path,
    producer: Producer,
    facts: FactLog,
    second: StorageService,
) -> None:
    config = rw_config(settings, jwks_file, "se-c", 0, 10**9)
    process = WorkerProcess(
        settings,
        jwks_file,
        TestSigner().issuer,
        **{
            k: v
            for k, v in config.model_dump(exclude_none=True).items()
            if k not in {"jwks_file", "token_issuer"}
        },
    )
    process.start()
    try:
        await wait_until(process.ready_async, 30, message="se-c ready")
        await second.start()
        before = producer.upload(b"before", "before.txt")
        await producer.send(before)
        assert (
            await facts.wait(FileStored, within=60, file__file_id=before.file_id)
        ).file.element_id == "se-c"
        process.kill()
        after = producer.upload(b"after", "after.txt")
        await producer.send(after)
        stored = await facts.wait(FileStored, within=60, file__file_id=after.file_id)
        assert stored.file.element_id == "se-b"
    finally:
        process.kill()


async def test_an_element_whose_storage_is_away_stands_aside_until_it_is_back(
    settings: Settings,
    jwks_file: Path,
    producer: Producer,
    facts: FactLog,
    second: StorageService,
) -> None:
    config = rw_config(settings, jwks_file, "se-d", 0, 10**9)
    first = StorageService(settings, config)
    await first.start()
    root = config.root
    assert root is not None
    unmounted = root.with_name("se-d-unmounted")
    try:
        await wait_until(lambda: first.consuming_uploads, 30, message="se-d consuming")
        await second.start()
        await wait_until(lambda: second.peers.all(), 30, message="se-b hears se-d")
        before = producer.upload(b"before", "before.txt")
        await producer.send(before)
        stored = await facts.wait(FileStored, within=60, file__file_id=before.file_id)
        assert stored.file.element_id == "se-d"

        root.rename(unmounted)  # se-d's volume is gone; se-b's is there
        during = producer.upload(b"during", "during.txt")
        await producer.send(during)
        stored = await facts.wait(FileStored, within=90, file__file_id=during.file_id)
        assert stored.file.element_id == "se-b", "the next element took the held upload"
        assert not first.consuming_uploads
        why = first.outages.reason()
        assert why is not None
        assert "element storage" in why
        beats = len(facts.of(ElementHeartbeat, element_id="se-d"))
        await wait_until(
            lambda: len(facts.of(ElementHeartbeat, element_id="se-d")) > beats,
            30,
            message="se-d heart-beating while its storage is away",
        )
        latest = facts.of(ElementHeartbeat, element_id="se-d")[-1]
        assert not latest.accepting_uploads
        assert not facts.of(ElementFull, element_id="se-d"), "away, not full"

        unmounted.rename(root)  # the volume is back: se-d takes uploads again, se-b stands by
        await wait_until(
            lambda: first.consuming_uploads and not second.consuming_uploads,
            90,
            message="se-d consuming again, se-b standing by",
        )
        after = producer.upload(b"after", "after.txt")
        await producer.send(after)
        stored = await facts.wait(FileStored, within=60, file__file_id=after.file_id)
        assert stored.file.element_id == "se-d"
    finally:
        if unmounted.exists() and not root.exists():
            unmounted.rename(root)
        await first.stop()
    assert not [r for r in facts.dlq if r.key in {str(during.file_id).encode()}]
