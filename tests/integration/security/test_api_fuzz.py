"""A bounded Schemathesis run against the facade and the auth service, with real tokens.

It finds no 5xx, no response that breaks its schema, and no status code or content type the
OpenAPI document does not declare. Bounded (a few examples per operation) so that it belongs in
the normal test run; a longer one is ``st run`` with a larger ``--max-examples`` by hand.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from base.settings import Settings
from notifications import NotificationSettings
from notifications.sealing import new_key_setting
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = 15


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    # Webhooks configured, so that their routes are exercised (no dispatcher runs: nothing is
    # sent to the URLs it registers).
    notifications = NotificationSettings(secret_keys=[new_key_setting()])
    async with running_pipeline(settings, redis_namespace, notifications=notifications) as running:
        yield running


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


async def schemathesis(url: str, token: str, report: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--seed",
        "12",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=report,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize("service", ["facade", "auth"])
async def test_schemathesis_finds_no_server_error_and_nothing_undeclared(
    pipeline: Pipeline, service: str, tmp_path: Path
) -> None:
    url = pipeline.facade_url if service == "facade" else pipeline.auth_url
    code, output = await schemathesis(url, await admin_token(pipeline), tmp_path)
    print(output)  # the summary shows in the test log
    assert code == 0, output
    summary = re.search(r"(\d+) server errors?", output)
    assert summary is None or summary.group(1) == "0", output
    assert re.search(r"\d+ passed", output), output
