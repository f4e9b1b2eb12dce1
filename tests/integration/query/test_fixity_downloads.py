"""Never served silently: a file whose last check failed is refused (problem+json naming the
finding), and a download of a file damaged after its last check is cut short, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from base.settings import Settings
from events import (
    ElementRegistered,
    FileStored,
    FixityFindingKind,
    LocalBackend,
    Mode,
)
from tests.factories import fixity_failed
from tests.helpers import wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FacadeHarness,
    FactPublisher,
    facade_harness,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
CONTENT = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
SOUND = make_record(filename="sound.bin", content=CONTENT, element_id="se-fix")
FAILED = make_record(filename="failed.bin", content=CONTENT[:5000], element_id="se-fix")
DAMAGED = make_record(filename="damaged.bin", content=CONTENT, element_id="se-fix")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def served(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[tuple[FacadeHarness, str]]:
    root = Path(topics.data_dir) / "se-fix"
    for record, data in ((SOUND, CONTENT), (FAILED, CONTENT[:5000]), (DAMAGED, CONTENT)):
        path = root / record.storage_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        async with FactPublisher(topics) as pub:
            await pub.publish(
                [
                    ElementRegistered(
                        element_id="se-fix",
                        mode=Mode.RW,
                        backend=LocalBackend(root=str(root)),
                        priority=1,
                        capacity_bytes=10**9,
                        free_bytes=10**9,
                        worker="tests",
                        started_at=BASE_TIME,
                    ),
                    *(FileStored(file=r) for r in (SOUND, FAILED, DAMAGED)),
                    fixity_failed(
                        FAILED.file_id,
                        FAILED.storage_path,
                        element_id="se-fix",
                        kind=FixityFindingKind.CHECKSUM_MISMATCH,
                    ),
                ]
            )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(harness.app, host="127.0.0.1", port=port, log_level="warning")
        )
        server.config.lifespan = "off"  # the harness already runs the app's lifespan
        task = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started, timeout=10)

        async def indexed() -> bool:
            response = await harness.get(f"/api/v1/files/{FAILED.file_id}/content")
            return response.status_code == 409

        await wait_until(indexed, timeout=30)
        try:
            yield harness, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await task


async def test_a_sound_file_downloads_whole(served: tuple[FacadeHarness, str]) -> None:
    harness, base = served
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.get(
            f"/api/v1/files/{SOUND.file_id}/content", headers=harness.token("files:read")
        )
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_a_file_whose_last_check_failed_is_refused_naming_the_finding(
    served: tuple[FacadeHarness, str],
) -> None:
    harness, base = served
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.get(
            f"/api/v1/files/{FAILED.file_id}/content", headers=harness.token("files:read")
        )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["reason"] == "fixity_failed"
    assert body["finding"]["kind"] == "checksum_mismatch"
    assert "fixity check" in body["detail"]


async def test_a_download_of_a_file_damaged_after_its_last_check_is_cut_short(
    served: tuple[FacadeHarness, str], topics: Settings
) -> None:
    harness, base = served
    path = Path(topics.data_dir) / "se-fix" / DAMAGED.storage_path
    damaged = bytearray(CONTENT)
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    received = bytearray()
    target = f"/api/v1/files/{DAMAGED.file_id}/content"

    async def download(http: httpx.AsyncClient) -> int:
        async with http.stream("GET", target, headers=harness.token("files:read")) as response:
            async for chunk in response.aiter_raw():
                received.extend(chunk)
            return response.status_code

    async with httpx.AsyncClient(base_url=base) as http:
        with pytest.raises(httpx.HTTPError):  # the connection ends before Content-Length
            await download(http)
        assert 0 < len(received) < len(CONTENT), "no complete-looking wrong file is received"

        async def refused() -> bool:
            try:
                again = await http.get(target, headers=harness.token("files:read"))
            except httpx.HTTPError:
                return False  # cut short again: the finding is not indexed yet
            body = again.json() if again.status_code == 409 else {}
            return bool(body.get("finding", {}).get("kind") == "checksum_mismatch")

        await wait_until(refused, timeout=30, message="the facade's finding is indexed")
