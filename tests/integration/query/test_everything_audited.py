"""Every change and every refusal of one shows up in ``GET /api/v1/audit`` with its actor,
action, subject, outcome and correlation id: worker facts, the facade's own doors, auth."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from base.settings import Settings
from producers import ArtStoreClient, Rejected
from tests.helpers import wait_until
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


async def audited(client: ArtStoreClient, **match: Any) -> dict[str, Any]:
    """The audit entry matching every field of ``match``, once the projector has it."""
    found: list[dict[str, Any]] = []

    async def present() -> bool:
        page = await client.audit(action=match["action"], limit=500)
        found[:] = [e for e in page["items"] if all(e.get(k) == v for k, v in match.items())]
        return bool(found)

    await wait_until(present, 60, message=f"audit entry {match}")
    return found[0]


async def test_uploads_updates_and_refused_commands_are_audited_with_their_caller(
    pipeline: Pipeline,
) -> None:
    admin = pipeline.admin_client_id
    async with ArtStoreClient(pipeline.client_settings()) as client:
        handle = await client.upload(b"audited bytes", filename="audited.txt")
        await handle.wait()
        file_id = str(handle.file_id)
        await audited(
            client, action="upload.stored", subject=file_id, actor=admin, outcome="success"
        )
        command = await client.update_metadata(file_id, description="seen by the auditor")
        await audited(
            client,
            action="file.metadata_updated",
            subject=file_id,
            actor=admin,
            outcome="success",
            correlation_id=command,
        )
        # An rw element keeps its files: the facade refuses the delete at its door and says why.
        with pytest.raises(Rejected):
            await client.delete(file_id)
        refused = await audited(
            client,
            action="file.delete_refused",
            subject=file_id,
            actor=admin,
            outcome="failure",
            source="artstore-facade",
        )
        assert "rw" in refused["reason"]


async def test_downloads_and_refusals_at_the_facade_are_audited_with_the_request_correlation(
    pipeline: Pipeline,
) -> None:
    admin = pipeline.admin_client_id
    async with ArtStoreClient(pipeline.client_settings()) as client:
        handle = await client.upload(b"downloaded bytes", filename="fetched.txt")
        await handle.wait()
        token = await client.token()
        file_id = str(handle.file_id)
        async with httpx.AsyncClient(
            base_url=pipeline.facade_url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            correlation = f"dl-{uuid.uuid4().hex}"
            got = await http.get(
                f"/api/v1/files/{file_id}/content", headers={"X-Correlation-ID": correlation}
            )
            assert got.status_code == 200
            assert got.content == b"downloaded bytes"
            assert got.headers["X-Correlation-ID"] == correlation
            missing = str(uuid.uuid4())
            refused = await http.get(
                f"/api/v1/files/{missing}/content", headers={"X-Correlation-ID": correlation}
            )
            assert refused.status_code == 404
        entry = await audited(
            client,
            action="file.downloaded",
            subject=file_id,
            actor=admin,
            outcome="success",
            correlation_id=correlation,
        )
        assert entry["source"] == "artstore-facade"
        entry = await audited(
            client,
            action="file.download_refused",
            subject=missing,
            actor=admin,
            outcome="failure",
            correlation_id=correlation,
        )
        assert entry["reason"]


async def test_a_refusal_for_a_missing_scope_names_the_refused_caller(pipeline: Pipeline) -> None:
    reader = await pipeline.create_account(f"reader{uuid.uuid4().hex[:6]}", role="readonly")
    async with ArtStoreClient(reader) as client:
        token = await client.token()
        async with httpx.AsyncClient(
            base_url=pipeline.facade_url, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            answer = await http.post(
                f"/api/v1/elements/{pipeline.element_id}/mode",
                json={"target_mode": "ro", "reason": "not mine to change"},
            )
            assert answer.status_code == 403
            upload = await http.post(
                "/api/v1/uploads", params={"filename": "not-mine.txt"}, content=b"x"
            )
            assert upload.status_code == 403
    async with ArtStoreClient(pipeline.client_settings()) as client:
        entry = await audited(
            client,
            action="element.mode_change_refused",
            subject=pipeline.element_id,
            actor=reader.client_id,
            outcome="failure",
            source="artstore-facade",
        )
        assert "elements:admin" in entry["reason"]
        entry = await audited(
            client,
            action="upload.refused",
            actor=reader.client_id,
            outcome="failure",
            source="artstore-facade",
        )
        assert "files:write" in entry["reason"]


async def test_a_mode_change_is_audited_with_its_command_correlation(pipeline: Pipeline) -> None:
    async with ArtStoreClient(pipeline.client_settings()) as client:
        command = await client.change_mode(pipeline.element_id, "ro", reason="quarter closed")
        entry = await audited(
            client,
            action="element.mode_changed",
            subject=pipeline.element_id,
            actor=pipeline.admin_client_id,
            correlation_id=command,
        )
        assert entry["reason"] == "quarter closed"
