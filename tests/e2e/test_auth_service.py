"""``artstore auth serve`` as an operator runs it: a process, its stdout, HTTP, SIGTERM."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from artstore.stack import StackEnv
from auth import HttpJwksSource, TokenVerifier
from tests.e2e.service_process import ServiceLauncher, ServiceProcess
from tests.pipeline import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

BOOTSTRAP_LINE = re.compile(
    r"ArtStore bootstrap admin created: client_id=(?P<client_id>\S+) client_secret=(?P<secret>\S+)"
)


@pytest.fixture
def service_env(
    stack: StackEnv, database_url: str, redis_namespace: str, topic_prefix: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
    env.update(stack.as_env())
    env.update(
        {
            "ARTSTORE_DATABASE_URL": database_url,
            "ARTSTORE_TOPIC_PREFIX": topic_prefix,
            "ARTSTORE_AUTH_BCRYPT_COST": "4",
            "ARTSTORE_AUTH_REDIS_PREFIX": f"{redis_namespace}auth:",
        }
    )
    return env


@pytest.fixture
async def serve(
    service_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Callable[[], Awaitable[ServiceProcess]]]:
    """Starts ``artstore auth serve`` on one port (the same for every start, as on a restart)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**service_env, "ARTSTORE_AUTH_ISSUER": base_url}
    args = ["auth", "serve", "--port", str(port)]
    async with ServiceLauncher("auth serve", args, base_url, tmp_path) as services:
        yield lambda: services.start(env)


async def client_credentials(
    http: httpx.AsyncClient, client_id: str, secret: str
) -> dict[str, object]:
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def verifier_of(service: ServiceProcess) -> TokenVerifier:
    """A verifier as another ArtStore service builds one: the running service's JWKS over HTTP."""
    return TokenVerifier(
        HttpJwksSource(f"{service.base_url}/.well-known/jwks.json"),
        issuer=service.base_url,
        audience="artstore",
    )


async def test_serve_bootstraps_once_issues_verifiable_tokens_and_stops_cleanly(
    serve: Callable[[], Awaitable[ServiceProcess]],
) -> None:
    first = await serve()
    await first.wait_ready()
    printed = BOOTSTRAP_LINE.search(first.stdout)
    assert printed is not None, first.stdout
    admin_id, admin_secret = printed["client_id"], printed["secret"]
    assert admin_secret not in first.stderr  # shown once, on stdout, never logged

    async with httpx.AsyncClient(base_url=first.base_url, timeout=10.0) as http:
        admin_token = await client_credentials(http, admin_id, admin_secret)
        assert admin_token["token_type"] == "Bearer"
        claims = await verifier_of(first).verify(
            str(admin_token["access_token"]), required_scopes={"accounts:admin"}
        )
        assert (claims.client_id, claims.role) == (admin_id, "admin")

        created = await http.post(
            "/api/v1/accounts",
            json={"name": "e2e-worker", "role": "user"},
            headers={"Authorization": f"Bearer {admin_token['access_token']}"},
        )
        assert created.status_code == 201, created.text
        worker = created.json()
        worker_token = await client_credentials(http, worker["client_id"], worker["client_secret"])
        worker_claims = await verifier_of(first).verify(str(worker_token["access_token"]))
        assert (worker_claims.client_id, worker_claims.role) == (worker["client_id"], "user")
        assert "accounts:admin" not in worker_claims.scopes

    assert await first.terminate() == 0, first.stderr

    second = await serve()
    await second.wait_ready()
    # The bootstrap is idempotent: the admin exists, so no new secret is generated or printed.
    assert "bootstrap admin" not in second.stdout
    assert "client_secret" not in second.stdout
    # Keys live in PostgreSQL: a fresh verifier fetching the restarted service's JWKS accepts
    # tokens signed before the restart, and the accounts and their secrets are still there.
    await verifier_of(second).verify(
        str(admin_token["access_token"]), required_scopes={"accounts:admin"}
    )
    await verifier_of(second).verify(str(worker_token["access_token"]))
    async with httpx.AsyncClient(base_url=second.base_url, timeout=10.0) as http:
        await client_credentials(http, admin_id, admin_secret)
        await client_credentials(http, worker["client_id"], worker["client_secret"])

    assert await second.terminate() == 0, second.stderr
