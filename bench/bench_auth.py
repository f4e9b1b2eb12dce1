"""Auth benchmark: token issuance/s through the real path vs bare bcrypt, and verification/s.

Issuance goes through the FastAPI app (ASGI, no network), PostgreSQL (account lookup, audit
outbox row, last_used_at) and Redis (rate limit), with bcrypt at cost 12 — the production
cost. The baseline is ``bcrypt.checkpw`` at the same cost, measured in the same run; the ratio
shows what the issuance path costs beyond the one bcrypt check it must do.

Verification is ``TokenVerifier.verify`` on one core with a cached key: signature, claims and
scope, no deny-list. Run: ``python -m bench.bench_auth`` (uses the running stack's services).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from datetime import timedelta

import asyncpg
import bcrypt
import httpx

from artstore.stack import ensure_stack, stack_is_running, stop_stack
from artstore.stack.postgres_server import maintenance_dsn, with_database
from auth.app import create_app
from auth.settings import AuthSettings
from auth.testing import TestSigner
from base.settings import load_settings
from bench.results import BenchResult, report

COST = 12
ISSUES = int(os.environ.get("BENCH_AUTH_ISSUES", "20"))
VERIFIES = int(os.environ.get("BENCH_AUTH_VERIFIES", "50000"))
SECRET = "Bench-Admin-Secret-0123456789-abcdefghijkl"


def bench_checkpw(n: int) -> float:
    hashed = bcrypt.hashpw(SECRET.encode(), bcrypt.gensalt(COST))
    started = time.perf_counter()
    for _ in range(n):
        assert bcrypt.checkpw(SECRET.encode(), hashed)
    return n / (time.perf_counter() - started)


async def bench_issuance(n: int) -> float:
    env = ensure_stack()
    name = f"artstore_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(maintenance_dsn(env.database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = load_settings(
            database_url=with_database(env.database_url, name), redis_url=env.redis_url
        )
        auth_settings = AuthSettings(
            bcrypt_cost=COST,
            bootstrap_admin_secret=SECRET,
            redis_prefix=f"bench{secrets.token_hex(4)}:",
            default_rate_limit=1_000_000,
            key_rotation_period=timedelta(days=30),
        )
        app = create_app(settings, auth_settings, background=False)
        async with app.router.lifespan_context(app):
            runtime = app.state.runtime
            async with runtime.engine.connect() as conn:
                from auth import account_store

                account = await account_store.by_name(conn, "admin")
            assert account is not None
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
                form = {"grant_type": "client_credentials"}
                creds = (account.client_id, SECRET)
                warm = await http.post("/oauth2/token", data=form, auth=creds)
                assert warm.status_code == 200, warm.text
                started = time.perf_counter()
                for _ in range(n):
                    response = await http.post("/oauth2/token", data=form, auth=creds)
                    assert response.status_code == 200
                return n / (time.perf_counter() - started)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def bench_verification(n: int) -> float:
    signer = TestSigner()
    verifier = signer.verifier()
    token = signer.issue(scopes={"files:write", "files:read"})
    for _ in range(1000):
        await verifier.verify(token, required_scopes=("files:write",))
    started = time.perf_counter()
    for _ in range(n):
        await verifier.verify(token, required_scopes=("files:write",))
    return n / (time.perf_counter() - started)


async def main() -> None:
    checkpw = bench_checkpw(ISSUES)
    already_running = stack_is_running()
    try:
        issuance = await bench_issuance(ISSUES)
    finally:
        if not already_running:
            stop_stack()
    verification = await bench_verification(VERIFIES)
    report(
        [
            BenchResult(
                "auth",
                f"token issuance, full path, bcrypt cost {COST}",
                issuance,
                "tokens/s",
                baseline=f"bcrypt.checkpw at cost {COST}",
                baseline_value=checkpw,
                target="close to the bcrypt baseline",
            ),
            BenchResult(
                "auth",
                "token verification, one core",
                verification,
                "tokens/s",
                target=">= 20,000/s",
                meets_target=verification >= 20_000,
            ),
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
