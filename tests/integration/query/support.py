"""Shared pieces of the query tests: publishing facts fast, running the projector, SQL probes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from base.settings import Settings
from consumers.service import run_projector
from consumers.settings import ProjectorSettings
from consumers.sql import asyncpg_dsn
from events import (
    FileRecord,
    RetentionPolicy,
    encode,
    new_event,
)
from events.admin import topic_partitions

BASE_TIME = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


class FactPublisher:
    """Publishes contract events pipelined (encode, send all, await all acknowledgements)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names = settings.topic_names()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5
        )

    async def __aenter__(self) -> FactPublisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def publish(self, payloads: Iterable[BaseModel], *, token: str | None = None) -> int:
        futures = []
        for payload in payloads:
            record = encode(
                new_event(payload, source="tests/query"),
                self.names,
                max_bytes=self.settings.max_message_bytes,
                token=token,
            )
            futures.append(
                await self.producer.send(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=[(k, v.encode()) for k, v in record.headers.items()],
                )
            )
        await asyncio.gather(*futures)
        return len(futures)

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key)


@contextlib.asynccontextmanager
async def running_projector(
    settings: Settings, projector_settings: ProjectorSettings | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """The live projector in this process until the block ends (its task: done only if the
    projector stopped by itself, which it never should)."""
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        run_projector(settings, projector_settings or ProjectorSettings(), stop, ready=ready)
    )
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    if task.done():
        task.result()
    try:
        yield task
    finally:
        stop.set()
        waiter.cancel()
        await asyncio.wait_for(task, 30)


async def fetchval(database_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def make_record(
    *,
    file_id: uuid.UUID | None = None,
    filename: str = "report.pdf",
    description: str | None = None,
    tags: Sequence[str] = (),
    custom: dict[str, Any] | None = None,
    username: str = "svc-ingest",
    size: int = 100,
    created: datetime | None = None,
    element_id: str = "se-01",
    version: int = 1,
    retention: RetentionPolicy = RetentionPolicy.PERMANENT,
    content: bytes | None = None,
) -> FileRecord:
    """A file record with sensible defaults; ``content`` sets size and checksum from bytes."""
    fid = file_id or uuid.uuid4()
    created = created or BASE_TIME
    checksum = hashlib.sha256(content or fid.bytes).hexdigest()
    if content is not None:
        size = len(content)
    stem, dot, ext = filename.rpartition(".")
    storage_name = (
        f"{(stem or ext)[:40]}_{username}_{created:%Y%m%dT%H%M%S}_{fid}{dot}{ext if stem else ''}"
    )
    return FileRecord(
        file_id=fid,
        element_id=element_id,
        original_filename=filename,
        storage_filename=storage_name[:200],
        storage_path=f"{created:%Y/%m/%d/%H}/{storage_name[:200]}",
        file_size=size,
        content_type="application/octet-stream",
        checksum=checksum,
        created_at=created,
        updated_at=created + timedelta(seconds=version - 1),
        created_by_id=f"sa_test_{username}_00000000",
        created_by_username=username,
        description=description,
        version=version,
        retention_policy=retention,
        ttl_expires_at=created + timedelta(days=30)
        if retention is RetentionPolicy.TEMPORARY
        else None,
        tags=list(tags),
        custom_attributes=custom or {},
    )


async def high_watermarks(settings: Settings, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """Each non-empty partition's high watermark, as fetch responses report it.

    Tansu's ListOffsets (``end_offsets``) can under-report after pipelined produces; the
    watermark in fetch responses is right, so read one record per partition to learn it.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(settings.kafka_bootstrap, list(topics))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        listed = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if listed[tp] > 0}
        deadline = asyncio.get_running_loop().time() + 30
        while pending and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(*pending, timeout_ms=500, max_records=100)
            pending = {tp for tp in pending if consumer.highwater(tp) is None}
        return {
            (tp.topic, tp.partition): consumer.highwater(tp) or 0
            for tp in partitions
            if listed[tp] > 0
        }
    finally:
        await consumer.stop()


class FacadeHarness:
    """The facade app over ASGI with a token signer, the projector running beside it."""

    def __init__(self, app: Any, http: Any, signer: Any, settings: Settings) -> None:
        self.app = app
        self.http = http
        self.signer = signer
        self.settings = settings

    def token(self, *scopes: str, **kwargs: Any) -> dict[str, str]:
        """An Authorization header with a fresh token carrying ``scopes``."""
        return {"Authorization": f"Bearer {self.signer.issue(scopes=set(scopes), **kwargs)}"}

    async def get(self, path: str, *scopes: str, **kwargs: Any) -> Any:
        headers = {**self.token(*(scopes or ("files:read",))), **kwargs.pop("headers", {})}
        return await self.http.get(path, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def facade_harness(
    settings: Settings, redis_namespace: str, **facade_options: Any
) -> AsyncIterator[FacadeHarness]:
    """Projector + facade app for one test module."""
    import httpx

    from auth.testing import TestSigner
    from facade import FacadeSettings, create_app

    generation = f"{redis_namespace}generation"
    signer = TestSigner()
    facade_settings = FacadeSettings(
        cache_generation_key=generation,
        cache_prefix=f"{redis_namespace}facade:",
        **facade_options,
    )
    projector = ProjectorSettings(
        group_id=f"{redis_namespace}projection", cache_generation_key=generation, batch_size=500
    )
    app = create_app(settings, facade_settings, verifier=signer.verifier())
    async with (
        running_projector(settings, projector),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://facade.test"
        ) as http,
    ):
        yield FacadeHarness(app, http, signer, settings)


async def read_all(settings: Settings, topic: Any) -> list[Any]:
    """Every record currently in a topic (all partitions), read without a group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        name = settings.topic_names().name(topic)
        partitions = await topic_partitions(settings.kafka_bootstrap, [name])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[Any] = []
        while True:
            fetched = await consumer.getmany(timeout_ms=1000)
            if not fetched:
                return out
            out += [r for batch in fetched.values() for r in batch]
    finally:
        await consumer.stop()
