"""The whole pipeline in this process for SDK and CLI tests: the auth service and the facade
served over real HTTP (uvicorn on free ports), the projector, and one storage worker (rw).

Builds on the query tests' projector runner and the services' own app factories.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from artstore.stack import StackEnv
from auth.testing import TestSigner
from base.settings import Settings
from consumers import ProjectorSettings, migrate
from events import Mode, create_topics
from producers import ClientSettings
from tests.helpers import wait_until
from tests.integration.query.support import running_projector

ADMIN_SECRET = "Pipeline-Admin-Secret-0123456789abcdefXYZ"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handling: the test decides when it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@contextlib.asynccontextmanager
async def served(app: FastAPI, port: int) -> AsyncIterator[str]:
    """``app`` on http://127.0.0.1:port until the block ends."""
    server = _QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), 60, message="server start")
    if task.done():
        task.result()
        raise RuntimeError(f"the server on port {port} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def served_jwks(signer: TestSigner) -> AsyncIterator[str]:
    """The signer's public keys served over HTTP (where a service process fetches them): the
    JWKS URL, until the block ends."""
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, object]:
        return signer.jwks()

    async with served(app, free_port()) as url:
        yield f"{url}/.well-known/jwks.json"


def service_env(stack: StackEnv, settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a service process on the stack, with ``settings``' broker, database,
    topics and data dir (no ``ARTSTORE_`` variable of the caller's leaks in); ``extra`` wins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
    env.update(stack.as_env())
    env.update(
        {
            "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ARTSTORE_DATABASE_URL": settings.database_url,
            "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
            "ARTSTORE_DATA_DIR": str(settings.data_dir),
            **extra,
        }
    )
    return env


def facade_env(
    stack: StackEnv,
    settings: Settings,
    *,
    signer: TestSigner,
    jwks_url: str,
    redis_namespace: str,
    port: int,
    **extra: str,
) -> dict[str, str]:
    """:func:`service_env` for ``artstore query facade`` on ``port``, trusting ``signer``."""
    return service_env(
        stack,
        settings,
        ARTSTORE_FACADE_HOST="127.0.0.1",
        ARTSTORE_FACADE_PORT=str(port),
        ARTSTORE_FACADE_JWKS_URL=jwks_url,
        ARTSTORE_FACADE_ISSUER=signer.issuer,
        ARTSTORE_FACADE_AUDIENCE=signer.audience,
        ARTSTORE_FACADE_STAGING="local",
        ARTSTORE_FACADE_CACHE_PREFIX=f"{redis_namespace}query:",
        ARTSTORE_FACADE_CACHE_GENERATION_KEY=f"{redis_namespace}query:generation",
        **extra,
    )


@dataclass
class Pipeline:
    """URLs and credentials of a running pipeline."""

    settings: Settings
    auth_url: str
    facade_url: str
    admin_client_id: str
    admin_secret: str
    element_id: str
    auth_outbox: Any = None
    """The auth service's outbox relay; its loop does not run here (:meth:`relay_auth_audit`)."""

    async def relay_auth_audit(self) -> int:
        """Publish the auth service's pending audit events now; how many went out."""
        published: int = await self.auth_outbox.drain()
        return published

    def client_settings(self, **overrides: Any) -> ClientSettings:
        """SDK settings for this pipeline (the admin's credentials unless overridden)."""
        s = self.settings
        values: dict[str, Any] = {
            "auth_url": self.auth_url,
            "facade_url": self.facade_url,
            "client_id": self.admin_client_id,
            "client_secret": self.admin_secret,
            "kafka_bootstrap": s.kafka_bootstrap,
            "topic_prefix": s.topic_prefix,
            "staging": "s3",
            "staging_dir": s.data_dir / "staging",
            "s3_endpoint": s.s3_endpoint,
            "s3_access_key": s.s3_access_key,
            "s3_secret_key": s.s3_secret_key,
            "s3_secure": s.s3_secure,
            "s3_region": s.s3_region,
            "s3_bucket": s.s3_bucket,
        }
        values.update(overrides)
        return ClientSettings(**values)

    def cli_env(self, **overrides: str) -> dict[str, str]:
        """The environment of an ``artstore`` subprocess configured for this pipeline."""
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")}
        env.update(
            {
                "ARTSTORE_ENV_FILE": str(self._empty_env_file()),
                "ARTSTORE_CLIENT_AUTH_URL": self.auth_url,
                "ARTSTORE_CLIENT_FACADE_URL": self.facade_url,
                "ARTSTORE_CLIENT_CLIENT_ID": self.admin_client_id,
                "ARTSTORE_CLIENT_CLIENT_SECRET": self.admin_secret,
                "ARTSTORE_CLIENT_STAGING": "directory",
                "ARTSTORE_CLIENT_STAGING_DIR": str(s.data_dir / "staging"),
                "ARTSTORE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
                "ARTSTORE_TOPIC_PREFIX": s.topic_prefix,
                "ARTSTORE_S3_ENDPOINT": s.s3_endpoint,
                "ARTSTORE_S3_ACCESS_KEY": s.s3_access_key,
                "ARTSTORE_S3_SECRET_KEY": s.s3_secret_key,
                "ARTSTORE_S3_BUCKET": s.s3_bucket,
                "COLUMNS": "200",
            }
        )
        env.update(overrides)
        return env

    def env_from_file(self, path: Path) -> dict[str, str]:
        """The environment of a subprocess that finds every setting in the env file at
        ``path``, written here as ``artstore dev`` writes its ``artstore.env``."""
        settings = {k: v for k, v in self.cli_env().items() if k.startswith("ARTSTORE_")}
        settings.pop("ARTSTORE_ENV_FILE")
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(settings.items())))
        env = {k: v for k, v in self.cli_env().items() if not k.startswith("ARTSTORE_")}
        env["ARTSTORE_ENV_FILE"] = str(path)
        return env

    def _empty_env_file(self) -> Path:
        path = self.settings.data_dir / "empty.env"
        path.touch()
        return path

    async def administer(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """An admin's call on the auth service's account API (``path`` under
        ``/api/v1/accounts``); its JSON answer."""
        async with httpx.AsyncClient(base_url=self.auth_url) as http:
            token = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.admin_client_id, self.admin_secret),
            )
            token.raise_for_status()
            answer = await http.request(
                method,
                f"/api/v1/accounts{path}",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                **kwargs,
            )
            answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    async def create_account(self, name: str, role: str = "user", **extra: Any) -> ClientSettings:
        """A new service account; SDK settings that use it."""
        body = await self.administer("POST", "", json={"name": name, "role": role, **extra})
        return self.client_settings(
            client_id=body["client_id"], client_secret=body["client_secret"]
        )

    async def account_id(self, client_id: str) -> str:
        """The auth service's id of the account with ``client_id``."""
        page = await self.administer("GET", "", params={"limit": 500})
        [found] = [a["id"] for a in page["items"] if a["client_id"] == client_id]
        return str(found)


@contextlib.asynccontextmanager
async def running_pipeline(
    settings: Settings,
    redis_namespace: str,
    *,
    element_id: str = "se-01",
    auth_options: dict[str, Any] | None = None,
    worker_options: dict[str, Any] | None = None,
    notifications: Any = None,
) -> AsyncIterator[Pipeline]:
    """Auth, facade, projector and an rw element's worker for one test module
    (``worker_options``: more of its settings)."""
    from auth.app import create_app as create_auth_app
    from auth.settings import AuthSettings
    from facade import FacadeSettings
    from facade import create_app as create_facade_app
    from storage_workers.config import WorkerConfig
    from storage_workers.service import StorageService

    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    await migrate(settings.database_url)
    (settings.data_dir / "staging").mkdir(parents=True, exist_ok=True)

    auth_port, facade_port = free_port(), free_port()
    auth_url = f"http://127.0.0.1:{auth_port}"
    auth_settings = AuthSettings(
        issuer=auth_url,
        bcrypt_cost=4,
        redis_prefix=f"{redis_namespace}auth:",
        bootstrap_admin_secret=ADMIN_SECRET,
        default_rate_limit=10_000,
        secret_grace_period=timedelta(hours=1),
        **(auth_options or {}),
    )
    auth_app = create_auth_app(settings, auth_settings, background=False)
    generation = f"{redis_namespace}generation"
    facade_settings = FacadeSettings(
        jwks_url=f"{auth_url}/.well-known/jwks.json",
        issuer=auth_url,
        revocation_prefix=auth_settings.redis_prefix,
        staging="local",
        cache_prefix=f"{redis_namespace}facade:",
        cache_generation_key=generation,
    )
    facade_app = create_facade_app(settings, facade_settings, notifications=notifications)
    projector = ProjectorSettings(
        group_id=f"{redis_namespace}projection", cache_generation_key=generation, batch_size=500
    )
    worker = StorageService(
        settings,
        WorkerConfig(
            element_id=element_id,
            mode=Mode.RW,
            root=settings.data_dir / element_id,
            jwks_url=f"{auth_url}/.well-known/jwks.json",
            token_issuer=auth_url,
            revocation_prefix=auth_settings.redis_prefix,
            heartbeat_interval_s=1,
            capacity_bytes=10**12,
            floor_full_bytes=0,
            floor_critical_bytes=0,
            floor_warning_bytes=0,
            session_timeout_ms=6000,
            **(worker_options or {}),
        ),
    )
    async with (
        served(auth_app, auth_port),
        served(facade_app, facade_port) as facade_url,
        running_projector(settings, projector),
    ):
        from auth import account_store

        async with auth_app.state.runtime.engine.connect() as conn:
            admin = await account_store.by_name(conn, auth_settings.bootstrap_admin_name)
        assert admin is not None
        pipeline = Pipeline(
            settings,
            auth_url,
            facade_url,
            admin.client_id,
            ADMIN_SECRET,
            element_id,
            auth_outbox=auth_app.state.runtime.relay,
        )
        await worker.start()
        try:
            await _wait_for_element(pipeline)
            yield pipeline
        finally:
            await worker.stop()


async def _wait_for_element(pipeline: Pipeline) -> None:
    """Until the facade lists the element as accepting uploads (the projector saw it)."""
    from producers import ArtStoreClient

    async with ArtStoreClient(pipeline.client_settings()) as client:

        async def accepting() -> bool:
            return any(
                e["element_id"] == pipeline.element_id and e.get("accepting_uploads")
                for e in await client.elements()
            )

        await wait_until(accepting, 60, interval=0.2, message="element accepting uploads")
