# SQL here names schemas (quoted) and fixed tables; values travel as parameters.
# ruff: noqa: S608
"""Replay: rebuild the projection from the topics into fresh tables, then swap them in.

The live projection keeps serving while the fresh tables fill (in their own schema). To swap,
one transaction locks the live tables — the live projector and readers wait — lets the replay
catch up to the live projection's stored positions, and moves the tables between schemas. The
live projector then finds stored positions equal to its own and carries on in the new tables;
were they to differ, its position check would seek it back or skip it forward.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from base.settings import Settings
from consumers.consume_loop import tune_garbage_collector
from consumers.migrate import PROJECTION_TABLES, migrate
from consumers.projector import PROJECTED_TOPICS, Projection
from consumers.settings import ProjectorSettings
from consumers.sql import asyncpg_dsn, quote_ident
from consumers.store import ProjectionStore
from events import Failure
from events.admin import topic_partitions

log = logging.getLogger(__name__)


class ReplayFailed(RuntimeError):
    """The replay could not finish; the live projection is untouched."""


@dataclass
class ReplayReport:
    """What a replay did."""

    schema: str
    events: int
    seconds: float
    swapped: bool
    retired_schema: str | None
    dead_letters: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class CountingSink:
    """Replays do not dead-letter again (the live projection already did); they count."""

    def __init__(self) -> None:
        self.count = 0

    async def send(self, record: ConsumerRecord[Any, Any], failure: Failure) -> None:
        self.count += 1


async def replay(
    settings: Settings,
    projector_settings: ProjectorSettings,
    *,
    from_time: datetime | None = None,
    swap: bool = True,
    keep_old: bool = True,
    swap_timeout_s: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Rebuild into ``artstore_replay_<hex>``; with ``swap``, make it the live projection.

    ``from_time`` starts from the first records at or after that instant instead of the
    earliest ones: the fresh tables then hold only what happened since.
    """
    live = projector_settings.db_schema
    target = f"artstore_replay_{secrets.token_hex(4)}"
    await migrate(settings.database_url, schema=target)
    store = await ProjectionStore.connect(
        settings.database_url, schema=target, application_name="artstore-replay"
    )
    sink = CountingSink()
    names = settings.topic_names()
    projection = Projection(store, names, sink, max_message_bytes=settings.max_message_bytes)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="artstore-replay",
        enable_auto_commit=False,
        max_poll_records=projector_settings.batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    started = time.perf_counter()
    applied = 0
    try:
        await consumer.start()
        partitions = await _assign(
            consumer,
            settings.kafka_bootstrap,
            [names.name(t) for t in PROJECTED_TOPICS],
            from_time,
        )
        targets = await consumer.end_offsets(partitions)
        start = _StartAtTime(from_time, partitions)

        async def step() -> None:
            nonlocal applied
            fetched = await consumer.getmany(
                timeout_ms=projector_settings.poll_timeout_ms,
                max_records=projector_settings.batch_size,
            )
            records = [r for tp, batch in fetched.items() for r in start.keep(tp, batch)]
            if records:
                result = await projection.handle(consumer, records)
                if result is not None:
                    applied += result.applied
                    if progress is not None:
                        progress(applied)

        while not await _reached(consumer, targets, highwater=True):
            await step()
        retired = None
        if swap:
            retired = await _swap(
                settings.database_url, live, target, consumer, step, swap_timeout_s
            )
            if not keep_old:
                await _drop_schema(settings.database_url, retired)
                retired = None
            await _bump_cache(settings, projector_settings)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        await store.close()
    report = ReplayReport(target, applied, seconds, swap, retired, sink.count)
    log.info(
        "replay finished",
        extra={"events": applied, "events_per_s": round(report.events_per_second), "swap": swap},
    )
    return report


async def _assign(
    consumer: AIOKafkaConsumer,
    bootstrap_servers: str,
    topics: list[str],
    from_time: datetime | None,
) -> list[TopicPartition]:
    partitions = await topic_partitions(bootstrap_servers, topics)
    if not partitions:
        raise ReplayFailed(f"none of the topics {', '.join(topics)} exist")
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    if from_time is not None:
        found = await consumer.offsets_for_times(
            {tp: int(from_time.timestamp() * 1000) for tp in partitions}
        )
        for tp, offset in found.items():
            # No record at or after the time: Kafka answers offset -1 (None here), Tansu
            # answers offset 0 with timestamp -1 (no real record has a negative timestamp).
            # Such a partition is read from the beginning and its records are skipped up to
            # the first one at or after the time (see _StartAtTime): seeking to its end would
            # trust ListOffsets, which Tansu can under-report (see docs/query.md).
            if offset is not None and offset.timestamp >= 0:
                consumer.seek(tp, offset.offset)
    return partitions


class _StartAtTime:
    """Drops each partition's records before the first one at or after ``from_time``."""

    def __init__(self, from_time: datetime | None, partitions: list[TopicPartition]) -> None:
        self._pending = set() if from_time is None else set(partitions)
        self._from_ms = 0 if from_time is None else int(from_time.timestamp() * 1000)

    def keep(
        self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]]
    ) -> list[ConsumerRecord[Any, Any]]:
        if tp not in self._pending:
            return records
        for i, record in enumerate(records):
            if record.timestamp >= self._from_ms:
                self._pending.discard(tp)
                return records[i:]
        return []


async def _reached(
    consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int], *, highwater: bool = False
) -> bool:
    """Every partition's position is at its target (and, with ``highwater``, at the watermark
    the latest fetch reported: some brokers under-report ``end_offsets``)."""
    for tp, end in targets.items():
        position = await consumer.position(tp)
        if position < end:
            return False
        if highwater and position < (consumer.highwater(tp) or 0):
            return False
    return True


async def _swap(
    database_url: str,
    live: str,
    target: str,
    consumer: AIOKafkaConsumer,
    step: Callable[[], Any],
    timeout_s: float,
) -> str:
    retired = f"artstore_retired_{datetime.now().strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(2)}"
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            # Offsets first: the live projector locks them first too, so neither waits on the
            # other in a cycle.
            first = ("projection_offsets",)
            for table in (*first, *(t for t in PROJECTION_TABLES if t not in first)):
                await conn.execute(
                    f"LOCK TABLE {quote_ident(live)}.{table} IN ACCESS EXCLUSIVE MODE"
                )
            rows = await conn.fetch(
                f"SELECT topic, partition, next_offset FROM {quote_ident(live)}.projection_offsets "
                "WHERE next_offset IS NOT NULL"
            )
            wanted = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            wanted = {tp: off for tp, off in wanted.items() if tp in consumer.assignment()}
            deadline = time.monotonic() + timeout_s
            while not await _reached(consumer, wanted):
                if time.monotonic() > deadline:
                    raise ReplayFailed(
                        "the replay could not reach the live projection's positions in "
                        f"{timeout_s:.0f}s; nothing was swapped"
                    )
                await step()
            await conn.execute(f"CREATE SCHEMA {quote_ident(retired)}")
            for table in PROJECTION_TABLES:
                await conn.execute(
                    f"ALTER TABLE {quote_ident(live)}.{table} SET SCHEMA {quote_ident(retired)}"
                )
                await conn.execute(
                    f"ALTER TABLE {quote_ident(target)}.{table} SET SCHEMA {quote_ident(live)}"
                )
        await conn.execute(f"DROP SCHEMA {quote_ident(target)} CASCADE")
    finally:
        await conn.close()
    return retired


async def _drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


async def _bump_cache(settings: Settings, projector_settings: ProjectorSettings) -> None:
    client = aioredis.from_url(settings.redis_url)
    try:
        await client.incr(projector_settings.cache_generation_key)
    except Exception as exc:
        log.warning("search cache not invalidated after the swap", extra={"error": str(exc)})
    finally:
        await client.aclose()


def run_replay(
    settings: Settings,
    projector_settings: ProjectorSettings,
    **options: Any,
) -> ReplayReport:
    """Synchronous entry point for the CLI."""
    tune_garbage_collector()
    return asyncio.run(replay(settings, projector_settings, **options))
