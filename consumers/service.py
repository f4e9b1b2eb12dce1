"""Wiring of the projector process: database, broker, Redis, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from base.dead_letter_depth import DEAD_LETTER_DEPTH
from base.health import HealthServer
from base.settings import Settings
from consumers.consume_loop import SeekToStoredPositions, consume, tune_garbage_collector
from consumers.dead_letters import DeadLetters
from consumers.migrate import migrate
from consumers.projector import PROJECTED_TOPICS, AfterBatch, Projection
from consumers.settings import ProjectorSettings
from consumers.store import ApplyResult, ProjectionStore
from events import Topic

log = logging.getLogger(__name__)


class SearchCacheInvalidator:
    """Bumps the search cache's generation after a batch that changed files or uploads.

    A crash between the commit and the bump leaves cached searches stale until their TTL.
    """

    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self._client = client
        self._key = key

    async def __call__(self, result: ApplyResult) -> None:
        if not result.changed_files:
            return
        try:
            await self._client.incr(self._key)
        except Exception as exc:  # the index is still right; only cached pages may lag
            log.warning("search cache not invalidated", extra={"error": str(exc)})


class ProjectorReadiness:
    """Why the projector is not ready: starting, or its database away; None when it projects."""

    def __init__(self) -> None:
        self.projection: Projection | None = None

    def __call__(self) -> str | None:
        if self.projection is None:
            return "starting: migrating the database and joining the consumer group"
        return self.projection.unavailable


@contextlib.asynccontextmanager
async def dead_letter_producer(
    settings: Settings, *, service: str, group: str
) -> AsyncIterator[DeadLetters]:
    """A started producer for dead letters."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{service}-dlq",
        acks="all",
        max_request_size=settings.max_message_bytes + 64 * 1024,
    )
    await producer.start()
    try:
        yield DeadLetters(
            producer,
            settings.topic_names().name(Topic.DLQ),
            group=group,
            service=service,
            max_bytes=settings.max_message_bytes,
        )
    finally:
        await producer.stop()


async def run_projector(
    settings: Settings,
    projector_settings: ProjectorSettings,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
    readiness: ProjectorReadiness | None = None,
) -> None:
    """Run the live projection until ``stop`` is set."""
    names = settings.topic_names()
    await migrate(settings.database_url, schema=projector_settings.db_schema)
    store = await ProjectionStore.connect(
        settings.database_url, schema=projector_settings.db_schema
    )
    client = aioredis.from_url(settings.redis_url)
    after: AfterBatch = SearchCacheInvalidator(client, projector_settings.cache_generation_key)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=projector_settings.group_id,
        client_id="artstore-projector",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=projector_settings.batch_size,
        session_timeout_ms=projector_settings.session_timeout_ms,
        heartbeat_interval_ms=max(projector_settings.session_timeout_ms // 4, 300),
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        async with dead_letter_producer(
            settings, service="artstore-projector", group=projector_settings.group_id
        ) as dlq:
            projection = Projection(
                store,
                names,
                dlq,
                max_message_bytes=settings.max_message_bytes,
                after_batch=after,
                max_backoff_s=projector_settings.max_backoff_s,
            )
            consumer.subscribe(
                [names.name(t) for t in PROJECTED_TOPICS],
                listener=SeekToStoredPositions(consumer, store),
            )
            await consumer.start()
            if ready is not None:
                ready.set()
            if readiness is not None:
                readiness.projection = projection
            log.info("projector started", extra={"group": projector_settings.group_id})
            await consume(
                consumer,
                projection,
                stop,
                batch_size=projector_settings.batch_size,
                poll_timeout_ms=projector_settings.poll_timeout_ms,
                commit_to_group=True,
                group=projector_settings.group_id,
            )
    finally:
        await consumer.stop()
        await store.close()
        await client.aclose()


def run_projector_process(settings: Settings, projector_settings: ProjectorSettings) -> None:
    """Run the projector until SIGINT or SIGTERM (the ``artstore query projector`` command);
    with a metrics port, serve ``/health/live``, ``/health/ready`` and ``/metrics`` on it."""
    tune_garbage_collector()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        readiness = ProjectorReadiness()
        health = HealthServer(REGISTRY, readiness)
        watchers: list[asyncio.Task[None]] = []
        if projector_settings.metrics_port is not None:
            await health.start(projector_settings.metrics_host, projector_settings.metrics_port)
            dlq = settings.topic_names().name(Topic.DLQ)
            watch = DEAD_LETTER_DEPTH.watch(
                settings.kafka_bootstrap, dlq, stop, interval_s=projector_settings.dlq_poll_s
            )
            watchers.append(asyncio.create_task(watch, name="dlq-depth"))
        try:
            await run_projector(settings, projector_settings, stop, readiness=readiness)
        finally:
            stop.set()
            for task in watchers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await health.stop()

    asyncio.run(main())
