"""``artstore auth serve`` as an operator runs it: a process, its stdout, HTTP, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from artstore.stack import StackEnv
from auth import HttpJwksSource, TokenVerifier
from tests.helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP_LINE = re.compile(
    r"ArtStore bootstrap admin created: client_id=(?P<client_id>\S+) client_secret=(?P<secret>\S+)"
)
#: How long a stopping service may take: its graceful shutdown plus interpreter exit.
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class AuthProcess:
    """One ``artstore auth serve`` process, its output captured to files."""

    process: asyncio.subprocess.Process
    stdout_path: Path
    stderr_path: Path
    base_url: str

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:

            async def ready() -> bool:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"auth serve exited with {self.process.returncode}:\n{self.stderr}"
                    )
                try:
                    return (await http.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout, interval=0.1, message="auth service ready")

    async def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit status."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT_S):
            return await self.process.wait()


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
) -> AsyncIterator[Callable[[], Awaitable[AuthProcess]]]:
    """Starts ``artstore auth serve`` on one port (the same for every start, as on a restart)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**service_env, "ARTSTORE_AUTH_ISSUER": base_url}
    started: list[AuthProcess] = []

    async def start() -> AuthProcess:
        n = len(started) + 1
        stdout_path, stderr_path = tmp_path / f"stdout-{n}.txt", tmp_path / f"stderr-{n}.txt"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "artstore",
                "auth",
                "serve",
                "--port",
                str(port),
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
            )
        started.append(AuthProcess(process, stdout_path, stderr_path, base_url))
        return started[-1]

    yield start
    for service in started:
        if service.process.returncode is None:
            service.process.kill()
            await service.process.wait()


async def client_credentials(
    http: httpx.AsyncClient, client_id: str, secret: str
) -> dict[str, object]:
    response = await http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def verifier_of(service: AuthProcess) -> TokenVerifier:
    """A verifier as another ArtStore service builds one: the running service's JWKS over HTTP."""
    return TokenVerifier(
        HttpJwksSource(f"{service.base_url}/.well-known/jwks.json"),
        issuer=service.base_url,
        audience="artstore",
    )


async def test_serve_bootstraps_once_issues_verifiable_tokens_and_stops_cleanly(
    serve: Callable[[], Awaitable[AuthProcess]],
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
