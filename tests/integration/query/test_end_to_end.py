"""Through the facade and a real storage worker: upload, search, download, update, delete, mode."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from base.settings import Settings
from consumers.check import check_element
from events import Mode, Topic
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.integration.query.support import FacadeHarness, facade_harness, fetchval

pytestmark = [
    pytest.mark.embedded_broker,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.e2e,
]
CONTENT = ("Годовой отчёт: выручка растёт. Annual report: revenue grows.\n" * 200).encode()
SCOPES = ("files:write", "files:read", "metadata:write", "files:delete", "elements:admin")


@pytest.fixture(scope="module")
async def system(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[tuple[FacadeHarness, StorageService]]:
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        jwks = Path(topics.data_dir) / "jwks.json"
        jwks.write_text(json.dumps(harness.signer.jwks()))
        config = WorkerConfig(
            element_id="se-e2e",
            mode=Mode.EDIT,
            root=Path(topics.data_dir) / "se-e2e",
            jwks_file=jwks,
            token_issuer=harness.signer.issuer,
            heartbeat_interval_s=1,
            capacity_bytes=10**12,
            floor_full_bytes=0,
            floor_critical_bytes=0,
            floor_warning_bytes=0,
        )
        worker = StorageService(topics, config)
        await worker.start()
        try:
            await wait_until(lambda: worker.consuming_uploads, timeout=30)
            yield harness, worker
        finally:
            await worker.stop()


async def _json(harness: FacadeHarness, path: str, **params: Any) -> tuple[int, Any]:
    response = await harness.http.get(path, params=params, headers=harness.token(*SCOPES))
    return response.status_code, response.json() if response.content else None


async def test_an_upload_through_the_facade_becomes_searchable_and_downloadable(
    system: tuple[FacadeHarness, StorageService],
) -> None:
    harness, _ = system
    headers = {**harness.token(*SCOPES), "Content-Type": "text/plain"}

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(CONTENT), 1000):  # streamed in pieces
            yield CONTENT[start : start + 1000]

    response = await harness.http.post(
        "/api/v1/uploads",
        params={
            "filename": "Годовой отчёт 2026.txt",
            "retention_policy": "temporary",
            "ttl_days": "7",
            "description": "Выручка и расходы за год",
            "tags": ["finance", "ежегодный"],
            "custom_attributes": json.dumps({"department": "бухгалтерия"}),
            "checksum": hashlib.sha256(CONTENT).hexdigest(),
        },
        headers=headers,
        content=body(),
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["Location"] == accepted["status_url"]
    file_id = accepted["file_id"]
    status, upload = await _json(harness, accepted["status_url"])
    assert status == 200
    assert upload["status"] in ("queued", "stored")

    async def stored() -> bool:
        return (await _json(harness, accepted["status_url"]))[1]["status"] == "stored"

    await wait_until(stored, timeout=60, message="the worker stored the upload")
    _, upload = await _json(harness, accepted["status_url"])
    assert upload["element_id"] == "se-e2e"

    async def searchable() -> bool:
        _, found = await _json(harness, "/api/v1/search", q="выручки годовые")
        return [i["file_id"] for i in found["items"]] == [file_id]

    await wait_until(searchable, timeout=30)
    _, found = await _json(harness, "/api/v1/search", q="бухгалтерия", tag="ежегодный")
    assert [i["file_id"] for i in found["items"]] == [file_id]

    content = await harness.http.get(
        f"/api/v1/files/{file_id}/content", headers=harness.token("files:read")
    )
    assert content.content == CONTENT
    assert content.headers["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    part = await harness.http.get(
        f"/api/v1/files/{file_id}/content",
        headers={**harness.token("files:read"), "Range": "bytes=-6"},
    )
    assert part.status_code == 206
    assert part.content == CONTENT[-6:]

    # A metadata update goes through the worker and shows up in the index.
    patch = await harness.http.patch(
        f"/api/v1/files/{file_id}",
        json={"description": "Quarterly platypus figures", "expected_version": 1},
        headers=harness.token("metadata:write"),
    )
    assert patch.status_code == 202, patch.text

    async def updated() -> bool:
        _, meta = await _json(harness, f"/api/v1/files/{file_id}")
        return meta["version"] == 2

    await wait_until(updated, timeout=30, message="the update reached the index")
    _, found = await _json(harness, "/api/v1/search", q="platypus")
    assert [i["file_id"] for i in found["items"]] == [file_id]

    # A delete goes through the worker; the file leaves search and reads answer 410.
    deleted = await harness.http.delete(
        f"/api/v1/files/{file_id}",
        params={"reason": "test"},
        headers=harness.token("files:delete"),
    )
    assert deleted.status_code == 202, deleted.text

    async def gone() -> bool:
        return (await _json(harness, f"/api/v1/files/{file_id}"))[0] == 410

    await wait_until(gone, timeout=30, message="the delete reached the index")
    _, found = await _json(harness, "/api/v1/search", q="platypus")
    assert found["items"] == []


async def test_mode_change_through_the_facade_reaches_the_element(
    system: tuple[FacadeHarness, StorageService],
) -> None:
    harness, _ = system
    # edit elements never change mode: the worker answers with a rejection fact.
    response = await harness.http.post(
        "/api/v1/elements/se-e2e/mode",
        json={"target_mode": "ro", "reason": "end of year"},
        headers=harness.token("elements:admin"),
    )
    assert response.status_code == 202, response.text

    async def rejected() -> bool:
        _, elements = await _json(harness, "/api/v1/elements")
        (element,) = [e for e in elements["items"] if e["element_id"] == "se-e2e"]
        return element["last_mode_rejection"] is not None

    await wait_until(rejected, timeout=30, message="the worker answered the mode change")
    _, elements = await _json(harness, "/api/v1/elements")
    (element,) = [e for e in elements["items"] if e["element_id"] == "se-e2e"]
    assert element["mode"] == "edit"
    assert element["backend"]["kind"] == "local"


async def test_commands_carry_the_callers_token(
    system: tuple[FacadeHarness, StorageService],
) -> None:
    harness, _ = system
    names = harness.settings.topic_names()
    consumer = AIOKafkaConsumer(
        names.name(Topic.ELEMENT_COMMANDS),
        bootstrap_servers=harness.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        records = [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    assert records
    headers = dict(records[0].headers)
    assert headers["authorization"].startswith(b"Bearer ey")


async def test_check_compares_the_index_with_the_elements_sidecars(
    system: tuple[FacadeHarness, StorageService],
) -> None:
    harness, _ = system
    response = await harness.http.post(
        "/api/v1/uploads",
        params={"filename": "checked.txt", "retention_policy": "temporary"},
        headers=harness.token(*SCOPES),
        content=b"checked content",
    )
    status_url = response.json()["status_url"]
    file_id = response.json()["file_id"]

    async def stored() -> bool:
        return (await _json(harness, status_url))[1]["status"] == "stored"

    await wait_until(stored, timeout=60)
    settings = harness.settings
    assert await check_element(settings, "se-e2e") == []

    await fetchval(
        settings.database_url,
        "UPDATE files SET description = 'tampered' WHERE file_id = $1",
        uuid.UUID(file_id),
    )
    (difference,) = await check_element(settings, "se-e2e")
    assert (difference.kind, difference.field) == ("field", "description")
    assert (difference.index, difference.storage) == ("tampered", None)

    _, meta = await _json(harness, f"/api/v1/files/{file_id}")
    sidecar = Path(settings.data_dir) / "se-e2e" / (meta["storage_path"] + ".attr.json")
    sidecar.unlink()
    env = {**os.environ, **_env(settings)}
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).parent / "artstore"),
            "query",
            "check",
            "--element",
            "se-e2e",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    kinds = {(d["kind"], d["file_id"]) for d in json.loads(result.stdout)}
    assert kinds == {("missing_on_storage", file_id)}


def _env(settings: Settings) -> dict[str, str]:
    return {
        "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
        "ARTSTORE_DATABASE_URL": settings.database_url,
        "ARTSTORE_REDIS_URL": settings.redis_url,
        "ARTSTORE_S3_ENDPOINT": settings.s3_endpoint,
        "ARTSTORE_DATA_DIR": str(settings.data_dir),
    }
