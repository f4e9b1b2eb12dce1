"""Uploads stream into staging (S3 or a shared directory) and become UploadRequested commands."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from artstore.stack import StackEnv
from base.settings import Settings
from events import Topic, decode_record
from tests.helpers import s3_client
from tests.integration.query.support import facade_harness, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.s3
async def test_upload_streams_to_s3_staging_and_publishes_the_command(
    topics: Settings, migrated: Settings, redis_namespace: str, stack: StackEnv
) -> None:
    content = os.urandom(9 * 1024 * 1024 + 17)  # more than one multipart part
    async with facade_harness(topics, redis_namespace, staging="s3") as harness:
        response = await harness.http.post(
            "/api/v1/uploads",
            params={"filename": "big.bin", "tags": ["a", "b"]},
            headers={**harness.token("files:write"), "Content-Type": "application/x-test"},
            content=_chunks(content),
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["checksum"] == hashlib.sha256(content).hexdigest()
        assert body["file_size"] == len(content)
        records = await read_all(topics, Topic.UPLOADS_RW)
        (command,) = [decode_record(r, max_bytes=10**6).envelope.data for r in records]
        assert str(command.file_id) == body["file_id"]
        assert command.content_type == "application/x-test"
        assert command.tags == ["a", "b"]
        assert command.staged.kind == "s3"
        assert dict(records[0].headers)["authorization"].startswith(b"Bearer ")
        staged = s3_client(stack).get_object(command.staged.bucket, command.staged.key)
        assert staged.read() == content
        status = await harness.get(body["status_url"], "files:write")
        assert status.json()["status"] == "queued"


async def test_oversized_and_mismatched_uploads_leave_nothing_staged(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> None:
    staging = Path(topics.data_dir) / "staging"
    async with facade_harness(
        topics, f"{redis_namespace}b", staging="local", max_upload_bytes=1000
    ) as harness:
        too_big = await harness.http.post(
            "/api/v1/uploads",
            params={"filename": "big.bin"},
            headers=harness.token("files:write"),
            content=_chunks(b"x" * 5000, size=100),
        )
        assert too_big.status_code == 413
        wrong = await harness.http.post(
            "/api/v1/uploads",
            params={"filename": "small.bin", "checksum": "0" * 64},
            headers=harness.token("files:write"),
            content=b"abc",
        )
        assert wrong.status_code == 400
        assert "sha256" in wrong.json()["detail"]
        ok = await harness.http.post(
            "/api/v1/uploads",
            params={"filename": "small.bin", "retention_policy": "temporary"},
            headers=harness.token("files:write"),
            content=b"abc",
        )
        assert ok.status_code == 202
    leftovers = sorted(p.name for p in staging.rglob("*") if p.is_file())
    assert leftovers == [ok.json()["file_id"]]
