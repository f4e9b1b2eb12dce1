"""Hostile HTTP input never reaches a 5xx, and a spoofing stored name is never offered or saved.

Against the whole pipeline (auth, facade, projector and an rw element), over real HTTP.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from base.settings import Settings
from producers import ArtStoreClient, StoredFile
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

DIGITS = "9" * 5000
#: A name that reads as "invoice-exe.pdf" on screen (U+202E reverses what follows), with a
#: header-splitting CR/LF and a bidirectional isolate.
SPOOFED = "invoice-\u202efdp.exe\r\nSet-Cookie: a=b\u2066.txt"
CLEAN = "invoice-fdp.exeSet-Cookie: a=b.txt"


def names_in(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir()]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


@pytest.fixture(scope="module")
async def admin_token(pipeline: Pipeline) -> str:
    async with httpx.AsyncClient(base_url=pipeline.auth_url) as http:
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(pipeline.admin_client_id, pipeline.admin_secret),
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(scope="module")
async def spoofed(pipeline: Pipeline) -> StoredFile:
    async with ArtStoreClient(pipeline.client_settings()) as client:
        return await (await client.upload(b"not what it claims\n", filename=SPOOFED)).wait(60)


@pytest.mark.parametrize("offset", [str(2**63), str(10**20), DIGITS])
async def test_an_account_offset_beyond_any_is_a_400_naming_it(
    pipeline: Pipeline, admin_token: str, offset: str
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.auth_url) as http:
        response = await http.get(
            "/api/v1/accounts",
            params={"offset": offset},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
    assert response.status_code in (400, 422), response.text
    assert "offset" in response.text


@pytest.mark.parametrize(
    ("header", "status"),
    [(f"bytes={DIGITS}-", 416), (f"bytes=-{DIGITS}", 206), (f"bytes=0-{DIGITS}", 206)],
)
async def test_a_range_of_thousands_of_digits_is_answered_by_the_rules(
    pipeline: Pipeline, admin_token: str, spoofed: StoredFile, header: str, status: int
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.facade_url) as http:
        response = await http.get(
            f"/api/v1/files/{spoofed.file_id}/content",
            headers={"Authorization": f"Bearer {admin_token}", "Range": header},
        )
    assert response.status_code == status, response.text
    if status == 206:
        assert response.content == b"not what it claims\n"
    else:
        assert response.headers["Content-Range"] == "bytes */19"


async def test_a_spoofing_name_is_offered_without_control_or_bidi_characters(
    pipeline: Pipeline, admin_token: str, spoofed: StoredFile
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.facade_url) as http:
        response = await http.get(
            f"/api/v1/files/{spoofed.file_id}/content",
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        meta = await http.get(
            f"/api/v1/files/{spoofed.file_id}", headers={"Authorization": f"Bearer {admin_token}"}
        )
    assert meta.json()["original_filename"] == SPOOFED  # stored as sent; only offers are cleaned
    disposition = response.headers["Content-Disposition"]
    assert disposition.endswith(f"filename*=UTF-8''{quote(CLEAN, safe='')}")
    assert "set-cookie" not in response.headers
    assert "%E2%80%AE" not in disposition


async def test_the_sdk_saves_a_spoofing_name_clean(
    pipeline: Pipeline, spoofed: StoredFile, tmp_path: Path
) -> None:
    async with ArtStoreClient(pipeline.client_settings()) as client:
        result = await client.download(spoofed.file_id, tmp_path)
    assert result.path == tmp_path / CLEAN
    assert names_in(tmp_path) == [CLEAN]


async def test_the_cli_saves_a_spoofing_name_clean(
    pipeline: Pipeline, spoofed: StoredFile, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        "download",
        str(spoofed.file_id),
        cwd=tmp_path,
        env=pipeline.cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode() + out.decode()
    assert names_in(tmp_path) == [CLEAN]


#: Valid times whose UTC form is outside the years 1-9999 that the database stores.
TIMES_BEYOND_UTC = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")


@pytest.mark.parametrize("at", TIMES_BEYOND_UTC)
@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/audit", "since"),
        ("/api/v1/audit", "until"),
        ("/api/v1/search", "created_from"),
        ("/api/v1/search", "created_to"),
        ("/api/v1/dlq", "since"),
        ("/api/v1/dlq", "until"),
    ],
)
async def test_a_time_beyond_the_years_utc_has_is_a_400_naming_it(
    pipeline: Pipeline, admin_token: str, path: str, parameter: str, at: str
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.facade_url) as http:
        response = await http.get(
            path, params={parameter: at}, headers={"Authorization": f"Bearer {admin_token}"}
        )
    assert response.status_code in (400, 422), response.text
    assert parameter in response.text
    assert "UTC" in response.text


@pytest.mark.parametrize("client_id", ["\x00", "sa_test_x\x00", "a" * 100_000])
async def test_a_client_id_no_account_can_have_is_an_invalid_client_not_a_500(
    pipeline: Pipeline, client_id: str
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.auth_url) as http:
        answers = [
            await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": "whatever",
                },
            ),
            await http.post(
                "/api/v1/auth/token", json={"client_id": client_id, "client_secret": "whatever"}
            ),
            await http.post(
                "/oauth2/introspect", data={"token": "x"}, auth=(quote(client_id), "whatever")
            ),
        ]
    for answer in answers:
        assert answer.status_code == 401, answer.text
        assert "invalid_client" in answer.text


async def test_a_lone_surrogate_as_client_id_is_an_invalid_client_not_a_500(
    pipeline: Pipeline,
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.auth_url) as http:
        answer = await http.post(
            "/api/v1/auth/token",
            content=b'{"client_id": "\\ud800", "client_secret": "whatever"}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 401, answer.text
