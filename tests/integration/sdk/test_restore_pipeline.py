"""Restore on request through the whole pipeline: an owner's file on an element that moves to
ar (its content to a directory cold tier), a restore asked for over HTTP, the file downloaded
from the restored copy, the warning, the expiry; every step audited, and each one the owner
registered a webhook for delivered, signed, to a real HTTP receiver. Short durations come from
the restore element's settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from base.settings import Settings
from events import Mode
from producers import ArtStoreClient, ClientSettings, verify_webhook
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.integration.notifications.support import (
    Receiver,
    account,
    dispatching,
    notification_settings,
    receiving,
)
from tests.pipeline import Pipeline, free_port, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

VAULT, COPIES = "se-vault", "se-copies"
KEEP_S, WARN_S = 12.0, 8.0
NOTIFICATIONS = notification_settings()
RESTORE_KINDS = ("restore.started", "restore.completed", "restore.expiring")


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    options = {
        "cold_backend": "local",
        "cold_root": settings.data_dir / "tape",
        "restore_element_id": COPIES,
        "fixity_enabled": False,
    }
    async with (
        running_pipeline(
            settings,
            redis_namespace,
            element_id=VAULT,
            worker_options=options,
            notifications=NOTIFICATIONS,
        ) as running,
        dispatching(settings, NOTIFICATIONS),
    ):
        copies = StorageService(
            settings,
            WorkerConfig(
                element_id=COPIES,
                mode=Mode.EDIT,
                root=settings.data_dir / COPIES,
                jwks_url=f"{running.auth_url}/.well-known/jwks.json",
                token_issuer=running.auth_url,
                revocation_prefix=f"{redis_namespace}auth:",
                heartbeat_interval_s=1,
                capacity_bytes=10**12,
                floor_full_bytes=0,
                floor_critical_bytes=0,
                floor_warning_bytes=0,
                session_timeout_ms=6000,
                restore_ttl_s=KEEP_S,
                restore_warning_s=WARN_S,
                ttl_sweep_interval_s=0.3,
                fixity_enabled=False,
            ),
        )
        await copies.start()
        try:
            yield running
        finally:
            await copies.stop()


@contextlib.asynccontextmanager
async def http_as(pipeline: Pipeline, who: ClientSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with ArtStoreClient(who) as sdk:
        token = await sdk.token()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=pipeline.facade_url, headers=headers) as http:
        yield http


async def audited(pipeline: Pipeline, action: str, subject: str) -> list[dict[str, Any]]:
    async with ArtStoreClient(pipeline.client_settings()) as admin:
        page = await admin.audit(action=action, subject=subject)
    return list(page["items"])


async def test_an_owner_restores_an_archived_file_downloads_it_and_the_copy_expires(
    pipeline: Pipeline, settings: Settings
) -> None:
    owner = await pipeline.create_account(f"owner{uuid.uuid4().hex[:6]}")
    stranger = await pipeline.create_account(f"other{uuid.uuid4().hex[:6]}")
    content = b"minutes of the board, 1998\n" * 2000
    async with (
        receiving(receiver := Receiver(), free_port()) as url,
        receiving(strangers := Receiver(), free_port()) as strangers_url,
        account(pipeline.facade_url, owner) as owners_calls,
        account(pipeline.facade_url, stranger) as strangers_calls,
    ):
        hook = await owners_calls.register(url, *RESTORE_KINDS)
        await strangers_calls.register(strangers_url, *RESTORE_KINDS)
        await _restore_to_expiry(pipeline, settings, owner, stranger, content, receiver, hook)
    assert strangers.received == [], "nobody hears of another account's restore"


async def _restore_to_expiry(
    pipeline: Pipeline,
    settings: Settings,
    owner: ClientSettings,
    stranger: ClientSettings,
    content: bytes,
    receiver: Receiver,
    hook: dict[str, Any],
) -> None:
    async with ArtStoreClient(owner) as sdk:
        handle = await sdk.upload(content, filename="minutes.txt")
        await handle.wait(60)
        file_id = str(handle.file_id)
        stored = await sdk.get_metadata(file_id)
    async with ArtStoreClient(pipeline.client_settings()) as admin:
        await admin.change_mode(VAULT, Mode.RO, reason="closed")
        await wait_until(lambda: _mode_is(admin, "ro"), 30, interval=0.2, message="element ro")
        await admin.change_mode(VAULT, Mode.AR, reason="to tape")
    path = stored["storage_path"]
    online, cold = settings.data_dir / VAULT / path, settings.data_dir / "tape" / path
    await wait_until(lambda: cold.exists() and not online.exists(), 60, message="moved cold")
    assert cold.read_bytes() == content
    async with ArtStoreClient(pipeline.client_settings()) as admin:
        await wait_until(lambda: _archived(admin), 60, interval=0.3, message="archive shown")
    listed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        "elements",
        "list",
        env=pipeline.cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    table, _ = await asyncio.wait_for(listed.communicate(), 120)
    row = next(line for line in table.decode().splitlines() if VAULT in line)
    assert "archived: 1 cold, 0 online" in row, table.decode()

    async with http_as(pipeline, owner) as http:
        await wait_until(
            lambda: _status(http, f"/api/v1/files/{file_id}/content", 409), 30, interval=0.2
        )
        refused = await http.get(f"/api/v1/files/{file_id}/content")
        assert refused.json()["reason"] == "archived"
        assert "/restore" in refused.json()["detail"]

        asked = await http.post(f"/api/v1/files/{file_id}/restore")
        assert asked.status_code == 202, asked.text
        body = asked.json()
        assert body["status"] == "queued"
        assert body["joined"] is False
        restore_id = body["restore_id"]
        again = await http.post(f"/api/v1/files/{file_id}/restore")
        assert again.status_code == 202
        assert again.json()["restore_id"] == restore_id, "a pending restore is joined"
        assert again.json()["joined"] is True

        async with http_as(pipeline, stranger) as other:
            assert (await other.post(f"/api/v1/files/{file_id}/restore")).status_code == 404
            assert (await other.get(f"/api/v1/restores/{restore_id}")).status_code == 404
        assert (await http.post(f"/api/v1/files/{uuid.uuid4()}/restore")).status_code == 404

        restored = await _until_status(http, restore_id, "restored")
        assert restored["restore_element_id"] == COPIES
        assert restored["requested_by"] == owner.client_id
        assert restored["expires_at"] is not None
        download = await http.get(f"/api/v1/files/{file_id}/content")
        assert download.status_code == 200, download.text
        assert download.content == content

        warned = await _until(http, restore_id, lambda row: row["warned_at"] is not None)
        assert warned["status"] == "restored"
        await _until_status(http, restore_id, "expired")
        await wait_until(
            lambda: _heard(receiver, restore_id) == set(RESTORE_KINDS),
            60,
            interval=0.2,
            message="the owner's webhook told of the restore's start, completion and expiry",
        )
        for got in receiver.received:
            # Signed with the webhook's secret over its timestamp and these very bytes.
            verify_webhook(got.body, got.headers["x-artstore-signature"], hook["secret"])
            notice = json.loads(got.body)
            assert notice["webhook_id"] == hook["webhook_id"]
            assert notice["data"]["file_id"] == file_id
        completed = [
            notice
            for got in receiver.received
            if got.headers["x-artstore-event"] == "restore.completed"
            and (notice := json.loads(got.body))["data"]["restore_id"] == restore_id
        ]
        assert [c["data"]["expires_at"] is not None for c in completed] == [True]
        after = await http.get(f"/api/v1/files/{file_id}/content")
        assert after.status_code == 409
        assert after.json()["reason"] == "archived"
    assert not (settings.data_dir / COPIES / restored["storage_path"]).exists()
    assert cold.read_bytes() == content, "the cold copy stays"

    for action in (
        "file.restore_requested",
        "file.restore_started",
        "file.restored",
        "file.restore_expired",
    ):
        await wait_until(
            lambda a=action: _audited_once(pipeline, a, file_id),  # type: ignore[misc]
            30,
            interval=0.3,
            message=f"{action} audited",
        )
    downloads = await audited(pipeline, "file.downloaded", file_id)
    assert any(d["details"].get("restore_id") == restore_id for d in downloads)
    refusals = await audited(pipeline, "file.restore_refused", file_id)
    assert any(r["actor"] == stranger.client_id for r in refusals)

    # Once expired, the file can be asked back again: a new restore, from the command line.
    secret = owner.client_secret
    assert secret is not None
    cli_env = pipeline.cli_env(
        ARTSTORE_CLIENT_CLIENT_ID=owner.client_id,
        ARTSTORE_CLIENT_CLIENT_SECRET=secret.get_secret_value(),
    )
    offline = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        "download",
        file_id,
        "-o",
        str(settings.data_dir / "offline-copy.txt"),
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(offline.communicate(), 120)
    assert offline.returncode != 0
    said = " ".join((out + err).decode().split())
    assert f"Run `artstore restore {file_id} --wait`" in said, said
    assert "kB" not in said, "no progress bar for content that never came"
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        "restore",
        file_id,
        "--wait",
        "--json",
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(command.communicate(), 120)
    assert command.returncode == 0, err.decode()
    again = json.loads(out)
    assert again["status"] == "restored"
    assert again["restore_id"] != restore_id


def _heard(receiver: Receiver, restore_id: str) -> set[str]:
    """The kinds of notice the receiver got about ``restore_id``."""
    return {
        got.headers["x-artstore-event"]
        for got in receiver.received
        if json.loads(got.body)["data"].get("restore_id") == restore_id
    }


async def _audited_once(pipeline: Pipeline, action: str, file_id: str) -> bool:
    return bool(await audited(pipeline, action, file_id))


async def _archived(admin: ArtStoreClient) -> bool:
    vault = next(e for e in await admin.elements() if e["element_id"] == VAULT)
    archive = vault.get("archive") or {}
    return bool(archive.get("state") == "archived" and archive.get("files_cold") == 1)


async def _mode_is(admin: ArtStoreClient, mode: str) -> bool:
    return any(e["element_id"] == VAULT and e["mode"] == mode for e in await admin.elements())


async def _status(http: httpx.AsyncClient, url: str, code: int) -> bool:
    return (await http.get(url)).status_code == code


async def _until(http: httpx.AsyncClient, restore_id: str, ok: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def check() -> bool:
        answer = await http.get(f"/api/v1/restores/{restore_id}")
        assert answer.status_code == 200, answer.text
        found.update(answer.json())
        assert found["status"] != "failed", found
        return bool(ok(found))

    await wait_until(check, 60, interval=0.3, message=f"restore {restore_id}")
    return found


async def _until_status(http: httpx.AsyncClient, restore_id: str, status: str) -> dict[str, Any]:
    return await _until(http, restore_id, lambda row: row["status"] == status)
