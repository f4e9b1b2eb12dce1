"""SIGKILL the projector process in the middle of a batch: nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from base.settings import Settings
from events import AuditRecorded, FileStored, MetadataUpdated, Topic
from tests.helpers import wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FactPublisher,
    fetch,
    fetchval,
    high_watermarks,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

FILES = 12_000
UPDATED = 3_000
AUDITS = 1_000
TOTAL = FILES + UPDATED + AUDITS


def _environment(settings: Settings, group: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ARTSTORE_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        ARTSTORE_TOPIC_PREFIX=settings.topic_prefix,
        ARTSTORE_DATABASE_URL=settings.database_url,
        ARTSTORE_REDIS_URL=settings.redis_url,
        ARTSTORE_PROJECTOR_GROUP_ID=group,
        ARTSTORE_PROJECTOR_BATCH_SIZE="1000",
        ARTSTORE_PROJECTOR_SESSION_TIMEOUT_MS="3000",
        ARTSTORE_PROJECTOR_CACHE_GENERATION_KEY=f"{group}:generation",
        ARTSTORE_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture
def projector_processes(
    settings: Settings, redis_namespace: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _start(settings: Settings, group: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "consumers", "projector"],
        env=_environment(settings, group),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _applied(url: str) -> int:
    return int(
        await fetchval(url, "SELECT coalesce(sum(events_applied), 0) FROM projection_offsets")
    )


async def _open_projector_transaction(url: str) -> bool:
    """The projector's connection is inside a transaction that has written but not committed."""
    rows = await fetch(
        url,
        "SELECT state, backend_xid FROM pg_stat_activity "
        "WHERE application_name = 'artstore-projector' AND datname = current_database() "
        "AND xact_start IS NOT NULL AND backend_xid IS NOT NULL",
    )
    return bool(rows)


async def test_kill_mid_batch_then_restart_loses_nothing_and_doubles_nothing(
    topics: Settings,
    migrated: Settings,
    redis_namespace: str,
    projector_processes: list[subprocess.Popen[bytes]],
) -> None:
    settings = topics
    url = settings.database_url
    group = f"{redis_namespace}crash"
    records = [
        make_record(filename=f"doc-{i}.txt", description=f"number {i}") for i in range(FILES)
    ]
    updates = [
        MetadataUpdated(
            file=r.model_copy(
                update={
                    "version": 2,
                    "description": f"revised {i}",
                    "updated_at": r.updated_at + timedelta(minutes=1),
                }
            ),
            updated_by="ops",
        )
        for i, r in enumerate(records[:UPDATED])
    ]
    audits = [
        AuditRecorded(
            action="token.issued",
            actor="sa",
            subject=f"subject-{i}",
            outcome="success",
            occurred_at=BASE_TIME,
        )
        for i in range(AUDITS)
    ]
    async with FactPublisher(settings) as pub:
        await pub.publish([FileStored(file=r) for r in records])
        await pub.publish([*updates, *audits])

    first = _start(settings, group)
    projector_processes.append(first)

    async def mid_batch() -> bool:
        return await _applied(url) > 0 and await _open_projector_transaction(url)

    try:
        await wait_until(mid_batch, timeout=60, interval=0.005, message="a batch in flight")
    except TimeoutError:
        first.kill()
        stderr = first.stderr.read().decode()[-2000:] if first.stderr else ""
        raise AssertionError(f"no batch in flight; projector said: {stderr}") from None
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert await _applied(url) < TOTAL, "the kill came too late to interrupt anything"

    second = _start(settings, group)
    projector_processes.append(second)

    async def caught_up() -> bool:
        return await _applied(url) >= TOTAL

    await wait_until(caught_up, timeout=120, interval=0.2, message="projector caught up")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, second.stderr.read().decode() if second.stderr else ""

    # Exactly once: every record counted once, and each partition's stored position is its end.
    assert await _applied(url) == TOTAL
    assert await fetchval(url, "SELECT count(*) FROM files") == FILES
    assert await fetchval(url, "SELECT count(*) FROM files WHERE version = 2") == UPDATED
    assert (
        await fetchval(url, "SELECT count(*) FROM files WHERE description LIKE 'revised %'")
        == UPDATED
    )
    assert await fetchval(url, "SELECT count(*) FROM audit_log") == AUDITS
    assert await fetchval(url, "SELECT count(*) FROM uploads WHERE status = 'stored'") == FILES
    stored = {
        (r["topic"], r["partition"]): r["next_offset"]
        for r in await fetch(url, "SELECT topic, partition, next_offset FROM projection_offsets")
    }
    names = settings.topic_names()
    ends = await high_watermarks(settings, [names.name(Topic.FILES), names.name(Topic.AUDIT)])
    assert ends
    for (topic, partition), end in ends.items():
        assert stored[(topic, partition)] == end
