"""The per-client sliding window holds exactly under concurrent bursts; Redis-down policy."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter

import httpx
import pytest
from redis.asyncio import Redis

from auth.app import create_app, redis_client
from auth.ratelimit import SlidingWindowLimiter
from base.settings import Settings
from tests.integration.auth.conftest import ISSUER, AuthHarness, auth_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_limiter_is_exact_under_a_concurrent_burst(
    redis_url: str, redis_namespace: str
) -> None:
    redis = redis_client(redis_url)
    try:
        limiter = SlidingWindowLimiter(redis, prefix=f"{redis_namespace}burst:", window_s=60)
        decisions = await asyncio.gather(*(limiter.hit("c1", 50) for _ in range(300)))
        assert sum(d.allowed for d in decisions) == 50
        refused = [d for d in decisions if not d.allowed]
        assert all(1 <= d.retry_after_s <= 60 for d in refused)
        assert (await limiter.hit("c2", 50)).allowed  # per client
    finally:
        await redis.aclose()


async def test_token_endpoint_returns_429_with_retry_after(harness: AuthHarness) -> None:
    client = await harness.create("limited", rate_limit=5)
    responses = await asyncio.gather(*(harness.token(client) for _ in range(12)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 5, 429: 7}
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("policy", "allowed"), [("allow", True), ("deny", False)])
async def test_redis_down_policy_of_the_limiter(policy: str, allowed: bool) -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=0.5)
    try:
        limiter = SlidingWindowLimiter(
            redis,
            prefix="x:",
            window_s=60,
            when_unavailable=policy,  # type: ignore[arg-type]
        )
        decision = await limiter.hit("c", 1)
        assert decision.degraded
        assert decision.allowed is allowed
        assert limiter.unavailable == 1
    finally:
        await redis.aclose()


async def test_tokens_are_still_issued_when_redis_is_down_and_policy_allows(
    settings: Settings, redis_namespace: str
) -> None:
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    app = create_app(down, auth_settings(redis_namespace), background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            admin = app.state.runtime
            from tests.integration.auth.conftest import ADMIN_SECRET

            async with admin.engine.connect() as conn:
                from auth import account_store

                account = await account_store.by_name(conn, "admin")
            assert account is not None
            response = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": account.client_id,
                    "client_secret": ADMIN_SECRET,
                },
            )
            assert response.status_code == 200, response.text
            metrics = (await http.get("/metrics")).text
            # Asked twice: for the source's failures and for the client's rate.
            assert 'artstore_auth_redis_unavailable_total{operation="rate_limit"} 2.0' in metrics
            ready = await http.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["redis"].startswith("unavailable")
