"""Keys outlive commands: a backlog of uploads signed before the auth service rotated its
signing key is stored by a worker that reads it afterwards, for as long as such a command can be
applied (the retired key stays published for the maximum command age plus the token lifetime);
a command whose key was retired longer ago than that is refused.

The auth service is real (PostgreSQL, Redis, its JWKS over HTTP) and runs on a clock the test
moves; the worker fetches the JWKS from it as in production and judges each command at its
record time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import jwt
import pytest

from auth.app import AuthRuntime, create_app
from auth.settings import AuthSettings
from base.settings import Settings
from events import FileStored, Mode, RejectionReason, UploadRejected
from storage_workers.service import StorageService
from tests.integration.auth.conftest import ADMIN_SECRET, ISSUER, Clock, auth_settings
from tests.pipeline import free_port, served
from tests.storage_support import FactLog, Producer, running_worker, worker_config

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]

ELEMENT = "se-rotation"
BACKLOG = 12


@dataclass
class AuthService:
    """The auth service on its HTTP port, its clock, and one producer account's credentials."""

    url: str
    runtime: AuthRuntime
    clock: Clock
    client_id: str
    secret: str

    @property
    def settings(self) -> AuthSettings:
        return self.runtime.auth_settings

    async def token(self) -> str:
        async with httpx.AsyncClient(base_url=self.url) as http:
            answer = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.secret),
            )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    async def published_kids(self) -> set[str]:
        async with httpx.AsyncClient(base_url=self.url) as http:
            keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
        return {key["kid"] for key in keys}

    async def rotate_and_move_on(self, by: timedelta) -> None:
        """Rotate the signing key now, then let ``by`` pass (the key ring reloaded)."""
        assert await self.runtime.keys.rotate_if_due(force=True) is not None
        self.clock.advance(by)
        await self.runtime.keys.load()


@pytest.fixture
async def auth(settings: Settings, redis_namespace: str) -> AsyncIterator[AuthService]:
    """A fresh auth service (its clock at the real time) with a producer account."""
    clock = Clock()
    app = create_app(settings, auth_settings(redis_namespace), clock=clock, background=False)
    port = free_port()
    async with served(app, port) as url, httpx.AsyncClient(base_url=url) as http:
        admin_token = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(await admin_client_id(app.state.runtime), ADMIN_SECRET),
        )
        assert admin_token.status_code == 200, admin_token.text
        created = await http.post(
            "/api/v1/accounts",
            json={"name": f"backlog-{port}", "role": "user"},
            headers={"Authorization": f"Bearer {admin_token.json()['access_token']}"},
        )
        assert created.status_code == 201, created.text
        account = created.json()
        yield AuthService(
            url, app.state.runtime, clock, account["client_id"], account["client_secret"]
        )


async def admin_client_id(runtime: AuthRuntime) -> str:
    from auth import account_store

    async with runtime.engine.connect() as conn:
        admin = await account_store.by_name(conn, "admin")
    assert admin is not None
    return admin.client_id


def worker(
    settings: Settings, auth: AuthService
) -> contextlib.AbstractAsyncContextManager[StorageService]:
    """The element's worker, verifying tokens with the auth service's JWKS over HTTP."""
    config = worker_config(
        ELEMENT,
        mode=Mode.RW,
        root=settings.data_dir / ELEMENT,
        jwks_file=None,
        jwks_url=f"{auth.url}/.well-known/jwks.json",
        token_issuer=ISSUER,
        revocation_prefix=auth.settings.redis_prefix,
    )
    return running_worker(settings, config)


def kid_of(token: str) -> str:
    kid: str = jwt.get_unverified_header(token)["kid"]
    return kid


async def test_a_backlog_signed_before_a_rotation_is_stored_after_it(
    settings: Settings, auth: AuthService, producer: Producer, facts: FactLog
) -> None:
    producer.client_id = auth.client_id  # bytes staged in the account's own namespace
    token = await auth.token()
    old_kid = kid_of(token)
    backlog = [producer.upload(b"queued before the rotation %d" % n) for n in range(BACKLOG)]
    await producer.send(*backlog, token=token)

    # Read as late as such a command may still be applied: the old key was retired longer ago
    # than any token lives, and still verifies what it signed.
    s = auth.settings
    await auth.rotate_and_move_on(s.token_ttl + s.leeway + s.max_command_age - timedelta(minutes=1))
    kids = await auth.published_kids()
    assert old_kid in kids
    assert len(kids) >= 2

    async with worker(settings, auth):
        for upload in backlog:
            await facts.wait(FileStored, within=60, file__file_id=upload.file_id)
    assert not [r for u in backlog for r in facts.of(UploadRejected, file_id=u.file_id)]


async def test_a_command_whose_key_was_retired_longer_ago_is_refused(
    settings: Settings, auth: AuthService, producer: Producer, facts: FactLog
) -> None:
    producer.client_id = auth.client_id
    token = await auth.token()
    old_kid = kid_of(token)
    late = producer.upload(b"signed by a key retired too long ago")
    await producer.send(late, token=token)

    await auth.rotate_and_move_on(auth.runtime.keys.retire_publish_for + timedelta(seconds=1))
    assert old_kid not in await auth.published_kids()

    async with worker(settings, auth):
        rejected = await facts.wait(UploadRejected, within=60, file_id=late.file_id)
    assert rejected.reason is RejectionReason.INVALID_TOKEN
    assert old_kid in rejected.detail
    assert not facts.of(FileStored, file__file_id=late.file_id)
