"""Failed authentications are limited per source address, never lock a client out, and an
unknown client id costs no bcrypt check (while taking as long as one)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from auth.app import AuthRuntime, create_app
from base.settings import Settings
from tests.integration.auth.conftest import ADMIN_SECRET, ISSUER, Client, auth_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LIMIT = 5
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


@pytest.fixture(scope="module")
async def app(settings: Settings, redis_namespace: str) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings,
        auth_settings(redis_namespace, failed_auth_limit_per_source=LIMIT),
        background=False,
    )
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def from_address(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def token(http: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


async def new_client(app: FastAPI, name: str) -> Client:
    runtime: AuthRuntime = app.state.runtime
    from auth import account_store

    async with runtime.engine.connect() as conn:
        admin = await account_store.by_name(conn, "admin")
    assert admin is not None
    async with from_address(app, "192.0.2.1") as http:
        issued = await token(http, admin.client_id, ADMIN_SECRET)
        created = await http.post(
            "/api/v1/accounts",
            json={"name": name, "role": "user", "rate_limit": 3},
            headers={"Authorization": f"Bearer {issued.json()['access_token']}"},
        )
    assert created.status_code == 201, created.text
    body = created.json()
    return Client(body["id"], body["client_id"], body["client_secret"])


async def test_a_strangers_wrong_secrets_never_lock_the_client_out(app: FastAPI) -> None:
    victim = await new_client(app, f"victim-{uuid.uuid4().hex[:6]}")
    async with from_address(app, ATTACKER) as attacker:
        answers = [(await token(attacker, victim.client_id, "wrong")).status_code for _ in range(8)]
        # Even the right secret is refused from an address over its failure limit.
        blocked = await token(attacker, victim.client_id, victim.secret)
    assert answers == [401] * LIMIT + [429] * (8 - LIMIT)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert "failed authentications from 203.0.113.7" in blocked.json()["error_description"]
    async with from_address(app, OWNER) as owner:
        assert (await token(owner, victim.client_id, victim.secret)).status_code == 200


async def test_an_address_over_its_limit_costs_no_bcrypt_check(app: FastAPI) -> None:
    runtime: AuthRuntime = app.state.runtime
    async with from_address(app, "203.0.113.8") as http:
        for _ in range(LIMIT):
            await token(http, "sa_test_nobody_00000000", "wrong")
        checks = runtime.tokens.hasher.checks
        refused = [
            (await token(http, "sa_test_nobody_00000000", "x")).status_code for _ in range(5)
        ]
    assert refused == [429] * 5
    assert runtime.tokens.hasher.checks == checks


async def test_unknown_client_ids_cost_no_bcrypt_check(app: FastAPI) -> None:
    runtime: AuthRuntime = app.state.runtime
    checks = runtime.tokens.hasher.checks
    async with from_address(app, "203.0.113.9") as http:
        answers = [
            await token(http, f"sa_test_made_up_{uuid.uuid4().hex[:8]}", "wrong")
            for _ in range(LIMIT)
        ]
    assert {r.status_code for r in answers} == {401}
    assert {r.json()["error"] for r in answers} == {"invalid_client"}
    assert runtime.tokens.hasher.checks == checks


async def test_successes_count_against_the_clients_own_rate_limit(app: FastAPI) -> None:
    busy = await new_client(app, f"busy-{uuid.uuid4().hex[:6]}")
    async with from_address(app, OWNER) as http:
        answers = [(await token(http, busy.client_id, busy.secret)).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
