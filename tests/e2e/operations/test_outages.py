"""An outage is not a poison message: S3, then PostgreSQL, stopped for 30 s under a steady load.

Everything runs as an operator runs it, each its own process: a storage worker whose element
lives in an S3 of the test's own, the projector and the facade, both on a PostgreSQL cluster of
the test's own (the broker and Redis are the stack's). Uploads are published at a steady rate
before, during and after the outage, while a watcher asks every 0.5 s: is the worker ready, is
the projector ready, what does the facade answer for a download (S3) and a search and an upload
status (PostgreSQL). Afterwards:

- every accepted upload is stored exactly once (one sidecar in the element, one index row with
  status ``stored``) and the DLQ is empty;
- the consumers that depend on what was stopped reported not ready, naming it, while it lasted,
  and are ready again;
- the facade answered 503 problem+json with ``Retry-After`` while it lasted, and never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from artstore.stack import StackEnv
from auth.testing import TestSigner
from base.settings import Settings
from consumers import migrate
from events import Topic, UploadRequested, create_topics
from events.admin import topic_partitions
from tests.e2e.service_process import ServiceLauncher, ServiceProcess
from tests.e2e.storage.own_database import OwnDatabase
from tests.e2e.storage.own_s3 import OwnS3
from tests.helpers import wait_until
from tests.integration.query.support import fetch
from tests.pipeline import facade_env, free_port, served_jwks, service_env
from tests.storage_support import CLIENT_ID, Producer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]

OUTAGE_S = 30.0
"""How long the dependency stays away."""
BEFORE_S = 6.0
AFTER_S = 6.0
UPLOADS_PER_TICK = 2
TICK_S = 0.5
ELEMENT = "se-outage"
BUCKET = "elements"
OUTCOME_DEADLINE_S = 240.0
"""Longest the test waits, once the dependency is back, for every upload's outcome."""


@dataclass
class Seen:
    """One answer the watcher got."""

    at: float
    who: str
    status: int
    body: str
    content_type: str = ""


@dataclass
class Deployment:
    settings: Settings
    s3: OwnS3
    database: OwnDatabase
    worker: ServiceProcess
    projector: ServiceProcess
    facade: ServiceProcess
    producer: Producer
    reader: dict[str, str]
    accepted: list[UploadRequested] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def signer() -> TestSigner:
    return TestSigner(issuer="https://auth.outage-e2e.test")


@pytest.fixture
async def deployment(
    stack: StackEnv,
    settings: Settings,
    signer: TestSigner,
    redis_namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Deployment]:
    s3 = OwnS3(tmp_path / "s3", BUCKET)
    database = OwnDatabase(tmp_path / "postgres")
    await s3.start()
    await database.start()
    own = settings.model_copy(
        update={
            "topic_prefix": f"o{secrets.token_hex(5)}.artstore",
            "database_url": database.url,
            "s3_endpoint": s3.endpoint,
            "s3_bucket": BUCKET,
            "data_dir": tmp_path / "data",
        }
    )
    await create_topics(own.kafka_bootstrap, own.topic_names())
    await migrate(own.database_url)
    ports = {name: free_port() for name in ("projector", "facade", "worker")}
    base = "http://127.0.0.1"
    s3_env = {
        "ARTSTORE_S3_ENDPOINT": s3.endpoint,
        "ARTSTORE_S3_BUCKET": BUCKET,
        "ARTSTORE_LOG_LEVEL": "WARNING",
    }
    producer = Producer(own, signer, own.data_dir / "staging")
    try:
        async with (
            served_jwks(signer) as jwks_url,
            ServiceLauncher(
                "projector", ["query", "projector"], f"{base}:{ports['projector']}", tmp_path
            ) as projectors,
            ServiceLauncher(
                "facade", ["query", "facade"], f"{base}:{ports['facade']}", tmp_path
            ) as facades,
            ServiceLauncher(
                "worker", ["storage", "worker"], f"{base}:{ports['worker']}", tmp_path
            ) as workers,
        ):
            projector = await projectors.start(
                service_env(
                    stack,
                    own,
                    **s3_env,
                    ARTSTORE_PROJECTOR_METRICS_PORT=str(ports["projector"]),
                    ARTSTORE_PROJECTOR_GROUP_ID=f"{own.topic_prefix}.projection",
                    ARTSTORE_PROJECTOR_CACHE_GENERATION_KEY=f"{redis_namespace}query:generation",
                    ARTSTORE_PROJECTOR_MAX_BACKOFF_S="2",
                )
            )
            worker = await workers.start(
                service_env(
                    stack,
                    own,
                    **s3_env,
                    ARTSTORE_STORAGE_ELEMENT_ID=ELEMENT,
                    ARTSTORE_STORAGE_MODE="rw",
                    ARTSTORE_STORAGE_BACKEND="s3",
                    ARTSTORE_STORAGE_S3_BUCKET=BUCKET,
                    ARTSTORE_STORAGE_S3_PREFIX=ELEMENT,
                    ARTSTORE_STORAGE_HEALTH_PORT=str(ports["worker"]),
                    ARTSTORE_STORAGE_JWKS_URL=jwks_url,
                    ARTSTORE_STORAGE_TOKEN_ISSUER=signer.issuer,
                    ARTSTORE_STORAGE_HEARTBEAT_INTERVAL_S="1",
                    ARTSTORE_STORAGE_SESSION_TIMEOUT_MS="6000",
                    ARTSTORE_STORAGE_FIXITY_ENABLED="false",
                    ARTSTORE_STORAGE_CAPACITY_BYTES=str(10**9),
                    ARTSTORE_STORAGE_FLOOR_WARNING_BYTES="1",
                    ARTSTORE_STORAGE_FLOOR_CRITICAL_BYTES="1",
                    ARTSTORE_STORAGE_FLOOR_FULL_BYTES="1",
                )
            )
            facade = await facades.start(
                facade_env(
                    stack,
                    own,
                    signer=signer,
                    jwks_url=jwks_url,
                    redis_namespace=redis_namespace,
                    port=ports["facade"],
                    **s3_env,
                )
            )
            for service in (projector, worker, facade):
                await service.wait_ready(90)
            await producer.start()
            reader = {
                "Authorization": "Bearer "
                + signer.issue(scopes={"files:read"}, client_id=CLIENT_ID, name="reader")
            }
            yield Deployment(own, s3, database, worker, projector, facade, producer, reader)
            for service in (facade, worker, projector):
                code = await service.terminate()
                assert code == 0, f"{service.name} exited {code}:\n{service.stderr[-3000:]}"
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        await database.stop()
        database.remove()
        await s3.stop()
        s3.remove()


async def publish_steadily(deployment: Deployment, until: asyncio.Event) -> None:
    """``UPLOADS_PER_TICK`` uploads every ``TICK_S`` until ``until`` is set."""
    producer = deployment.producer
    while not until.is_set():
        uploads = [
            producer.upload(os.urandom(3000), f"steady-{len(deployment.accepted) + i}.bin")
            for i in range(UPLOADS_PER_TICK)
        ]
        async with asyncio.timeout(60):
            await producer.send(*uploads)
        deployment.accepted.extend(uploads)
        await asyncio.sleep(TICK_S)


async def watch(deployment: Deployment, stored: UUID, until: asyncio.Event) -> None:
    """Every ``TICK_S``: the consumers' readiness and the facade's answers, in ``seen``."""
    asks: dict[str, tuple[str, str, dict[str, Any]]] = {
        "worker": (deployment.worker.base_url, "/health/ready", {}),
        "projector": (deployment.projector.base_url, "/health/ready", {}),
        "download": (deployment.facade.base_url, f"/api/v1/files/{stored}/content", {}),
        "search": (deployment.facade.base_url, "/api/v1/search", {"q": "steady"}),
        "status": (deployment.facade.base_url, f"/api/v1/uploads/{stored}", {}),
    }
    async with httpx.AsyncClient(timeout=15.0) as http:

        async def ask(who: str, base: str, path: str, params: dict[str, Any]) -> None:
            try:
                r = await http.get(base + path, params=params, headers=deployment.reader)
            except httpx.TransportError as exc:
                deployment.seen.append(Seen(time.monotonic(), who, 0, repr(exc)))
                return
            deployment.seen.append(
                Seen(
                    time.monotonic(),
                    who,
                    r.status_code,
                    r.text[:500],
                    r.headers.get("content-type", ""),
                )
            )

        for tick in itertools.count():
            if until.is_set():
                return
            # A new query each time: a cached answer would not ask the database.
            asks["search"][2]["q"] = f"steady-{tick}"
            await asyncio.gather(*(ask(who, *where) for who, where in asks.items()))
            await asyncio.sleep(TICK_S)


async def one_stored(deployment: Deployment) -> UUID:
    """Publish one upload and wait until the index says it is stored."""
    upload = deployment.producer.upload(b"stored before the outage", "steady-first.bin")
    await deployment.producer.send(upload)
    deployment.accepted.append(upload)

    async def stored() -> bool:
        rows = await fetch(
            deployment.settings.database_url,
            "SELECT status FROM uploads WHERE file_id = $1",
            upload.file_id,
        )
        return bool(rows) and rows[0]["status"] == "stored"

    await wait_until(stored, 60, interval=0.3, message="the first upload stored")
    return upload.file_id


Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Outage:
    """When (monotonic) the dependency was being stopped, was away, and was back."""

    stopping: float
    began: float
    ended: float


async def under_load(deployment: Deployment, stop: Step, start: Step) -> Outage:
    """Steady uploads and the watcher around an outage: ``stop``, ``OUTAGE_S``, ``start``."""
    stored = await one_stored(deployment)
    done = asyncio.Event()
    tasks = [
        asyncio.create_task(publish_steadily(deployment, done)),
        asyncio.create_task(watch(deployment, stored, done)),
    ]
    try:
        await asyncio.sleep(BEFORE_S)
        stopping = time.monotonic()
        await stop()
        began = time.monotonic()
        await asyncio.sleep(OUTAGE_S)
        await start()
        ended = time.monotonic()
        await asyncio.sleep(AFTER_S)
    finally:
        done.set()
        await asyncio.gather(*tasks)
    return Outage(stopping, began, ended)


async def every_upload_stored_once(deployment: Deployment) -> None:
    """Every accepted upload: status ``stored`` in the index and exactly one sidecar in the
    element; the DLQ empty."""
    ids = [u.file_id for u in deployment.accepted]

    async def all_stored() -> bool:
        rows = await fetch(
            deployment.settings.database_url,
            "SELECT count(*) AS n FROM uploads WHERE file_id = ANY($1::uuid[]) "
            "AND status = 'stored'",
            ids,
        )
        return int(rows[0]["n"]) == len(ids)

    await wait_until(all_stored, OUTCOME_DEADLINE_S, interval=1.0, message="every upload stored")
    client = deployment.s3.client()
    copies: Counter[UUID] = Counter()
    for item in client.list_objects(BUCKET, prefix=f"{ELEMENT}/", recursive=True):
        name = item.object_name or ""
        if not name.endswith(".attr.json") or "/.artstore/" in name:
            continue
        response = client.get_object(BUCKET, name)
        try:
            copies[UUID(json.loads(response.read())["file_id"])] += 1
        finally:
            response.close()
            response.release_conn()
    assert {copies[i] for i in ids} == {1}, {str(i): copies[i] for i in ids if copies[i] != 1}
    assert await dead_letters(deployment.settings) == 0


async def dead_letters(settings: Settings) -> int:
    """How many records the DLQ holds."""
    name = settings.topic_names().name(Topic.DLQ)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await topic_partitions(settings.kafka_bootstrap, [name]))
        return sum(ends.values())
    finally:
        await consumer.stop()


def assert_never_500(seen: list[Seen]) -> None:
    errors = [s for s in seen if s.status >= 500 and s.status != 503]
    assert not errors, [(s.who, s.status, s.body[:200]) for s in errors[:5]]
    for s in seen:
        if s.status == 503 and s.who in ("download", "search", "status"):
            assert s.content_type.startswith("application/problem+json"), s
            assert json.loads(s.body)["detail"], s


def refused_while_away(seen: list[Seen], who: str, outage: Outage, names: str) -> None:
    """``who`` answered 503 naming ``names`` during the outage, and only 200 before it."""
    window = [s for s in seen if s.who == who and outage.began <= s.at <= outage.ended]
    assert any(s.status == 503 and names in s.body for s in window), (
        who,
        [(round(s.at - outage.began, 1), s.status, s.body[:120]) for s in window],
    )
    before = [s for s in seen if s.who == who and s.at < outage.stopping]
    assert before, who
    assert all(s.status == 200 for s in before), (who, [(s.status, s.body[:200]) for s in before])


async def test_s3_away_for_30_s_pauses_the_worker_and_loses_nothing(
    deployment: Deployment,
) -> None:
    s3 = deployment.s3
    outage = await under_load(deployment, s3.stop, s3.start)
    seen = deployment.seen
    refused_while_away(seen, "worker", outage, "element storage")
    refused_while_away(seen, "download", outage, "storage")
    assert_never_500(seen)
    await every_upload_stored_once(deployment)
    await deployment.worker.wait_ready(60)
    assert len(deployment.accepted) >= OUTAGE_S / TICK_S * UPLOADS_PER_TICK / 2


async def test_postgresql_away_for_30_s_pauses_the_consumers_and_loses_nothing(
    deployment: Deployment,
) -> None:
    database = deployment.database
    outage = await under_load(deployment, database.stop, database.start)
    seen = deployment.seen
    refused_while_away(seen, "worker", outage, "PostgreSQL")
    refused_while_away(seen, "projector", outage, "database")
    refused_while_away(seen, "search", outage, "PostgreSQL")
    refused_while_away(seen, "status", outage, "PostgreSQL")
    assert_never_500(seen)
    await every_upload_stored_once(deployment)
    for service in (deployment.worker, deployment.projector, deployment.facade):
        await service.wait_ready(60)
    assert len(deployment.accepted) >= OUTAGE_S / TICK_S * UPLOADS_PER_TICK / 2
