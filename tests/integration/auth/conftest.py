"""An auth app per test module on the real PostgreSQL and Redis, driven through ASGI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from auth.app import AuthRuntime, create_app
from auth.settings import AuthSettings
from base.settings import Settings

ADMIN_SECRET = "Admin-Secret-For-Tests-0123456789abcdefXYZ"
ISSUER = "https://auth.artstore.test"


class Clock:
    """A clock tests move by hand; starts at the real time so Redis TTLs stay sensible."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Client:
    """A service account as a test sees it."""

    id: str
    client_id: str
    secret: str

    def basic(self, secret: str | None = None) -> dict[str, str]:
        raw = f"{self.client_id}:{secret or self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@dataclass
class AuthHarness:
    app: FastAPI
    http: httpx.AsyncClient
    clock: Clock
    admin: Client

    @property
    def runtime(self) -> AuthRuntime:
        runtime: AuthRuntime = self.app.state.runtime
        return runtime

    async def token(self, client: Client, scope: str | None = None) -> httpx.Response:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        return await self.http.post("/oauth2/token", data=data, headers=client.basic())

    async def access_token(self, client: Client, scope: str | None = None) -> str:
        response = await self.token(client, scope)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.access_token(self.admin)}"}

    async def create(self, name: str, role: str = "user", **extra: Any) -> Client:
        response = await self.http.post(
            "/api/v1/accounts",
            json={"name": name, "role": role, **extra},
            headers=await self.admin_headers(),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Client(body["id"], body["client_id"], body["client_secret"])


def auth_settings(redis_namespace: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "bcrypt_cost": 4,
        "redis_prefix": redis_namespace,
        "bootstrap_admin_secret": ADMIN_SECRET,
        "default_rate_limit": 10_000,
        "secret_grace_period": timedelta(hours=1),
    }
    values.update(overrides)
    return AuthSettings(**values)


@pytest.fixture(scope="module")
async def harness(settings: Settings, redis_namespace: str) -> AsyncIterator[AuthHarness]:
    clock = Clock()
    app = create_app(settings, auth_settings(redis_namespace), clock=clock, background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            runtime: AuthRuntime = app.state.runtime
            from auth import account_store

            async with runtime.engine.connect() as conn:
                admin = await account_store.by_name(conn, "admin")
            assert admin is not None
            yield AuthHarness(
                app, http, clock, Client(str(admin.id), admin.client_id, ADMIN_SECRET)
            )
