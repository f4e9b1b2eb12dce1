"""``artstore query facade`` as an operator runs it: a uvicorn process, real HTTP, SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from artstore.stack import StackEnv
from auth.testing import TestSigner
from base.settings import Settings
from consumers import ProjectionStore, migrate
from consumers.changes import UpsertFile
from consumers.file_rows import file_row
from consumers.store import PositionedEvent
from tests.e2e.service_process import ServiceLauncher, ServiceProcess
from tests.integration.query.support import make_record
from tests.pipeline import facade_env, free_port, served_jwks

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

RATE_LIMIT = 5


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner(issuer="https://auth.facade-e2e.test")


@pytest.fixture(scope="module")
async def jwks_url(signer: TestSigner) -> AsyncIterator[str]:
    async with served_jwks(signer) as url:
        yield url


@pytest.fixture(scope="module")
async def indexed_file_id(settings: Settings) -> str:
    """A migrated database holding one indexed file, written by the projector's own store."""
    await migrate(settings.database_url)
    record = make_record(filename="quarterly-report.pdf", description="harbour inspection")
    store = await ProjectionStore.connect(settings.database_url)
    try:
        await store.apply([PositionedEvent("seed", 0, 0, [UpsertFile(file_row(record))])])
    finally:
        await store.close()
    return str(record.file_id)


@pytest.fixture
async def start_facade(
    stack: StackEnv,
    settings: Settings,
    signer: TestSigner,
    jwks_url: str,
    indexed_file_id: str,
    redis_namespace: str,
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[ServiceProcess]]]:
    """Starts ``python -m artstore query facade`` on a free port and waits until it is ready."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = facade_env(
        stack,
        settings,
        signer=signer,
        jwks_url=jwks_url,
        redis_namespace=redis_namespace,
        port=port,
    )
    async with ServiceLauncher("query facade", ["query", "facade"], base_url, tmp_path) as services:

        async def start(**extra_env: str) -> ServiceProcess:
            facade = await services.start({**env, **extra_env})
            await facade.wait_ready()
            return facade

        yield start


def bearer(signer: TestSigner, client_id: str) -> dict[str, str]:
    token = signer.issue(scopes={"files:read"}, client_id=client_id)
    return {"Authorization": f"Bearer {token}"}


async def test_facade_process_searches_with_a_token_refuses_without_and_exits_0_on_sigterm(
    start_facade: Callable[..., Awaitable[ServiceProcess]],
    signer: TestSigner,
    indexed_file_id: str,
) -> None:
    facade = await start_facade()
    async with httpx.AsyncClient(base_url=facade.base_url, timeout=10.0) as http:
        found = await http.get(
            "/api/v1/search",
            params={"q": "harbour"},
            headers=bearer(signer, "sa_test_reader_00000000"),
        )
        refused = await http.get("/api/v1/search", params={"q": "harbour"})
    assert found.status_code == 200, found.text
    assert [item["file_id"] for item in found.json()["items"]] == [indexed_file_id]
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert await facade.terminate() == 0


async def test_a_burst_beyond_the_rate_limit_gets_429_with_retry_after_and_spares_others(
    start_facade: Callable[..., Awaitable[ServiceProcess]], signer: TestSigner
) -> None:
    facade = await start_facade(
        ARTSTORE_FACADE_RATE_LIMIT=str(RATE_LIMIT), ARTSTORE_FACADE_RATE_LIMIT_WINDOW_S="120"
    )
    burst = bearer(signer, "sa_test_burst_00000000")
    async with httpx.AsyncClient(base_url=facade.base_url, timeout=10.0) as http:
        responses = await asyncio.gather(
            *(
                http.get("/api/v1/search", params={"q": "harbour"}, headers=burst)
                for _ in range(RATE_LIMIT + 4)
            )
        )
        other = await http.get(
            "/api/v1/search",
            params={"q": "harbour"},
            headers=bearer(signer, "sa_test_other_00000000"),
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * RATE_LIMIT + [429] * 4
    for refused in (r for r in responses if r.status_code == 429):
        assert 1 <= int(refused.headers["Retry-After"]) <= 120
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert other.status_code == 200
    assert await facade.terminate() == 0
