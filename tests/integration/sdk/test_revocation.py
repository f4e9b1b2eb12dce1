"""Revocation through the whole pipeline: once the auth service has revoked a token (RFC 7009),
the facade refuses it on the very next request, and an upload command carrying it is rejected
by the element's worker; other tokens of the same account keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from base.settings import Settings
from producers import ArtStoreClient, Rejected, UploadRequest
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


async def test_a_revoked_token_is_refused_at_the_facade_and_on_kafka(pipeline: Pipeline) -> None:
    account = await pipeline.create_account("revoked-producer")
    async with ArtStoreClient(account) as client:
        stored = await (await client.upload(b"before the revocation", filename="a.txt")).wait(60)
        token = await client.token()
        secret = account.client_secret.get_secret_value() if account.client_secret else ""
        bearer = {"Authorization": f"Bearer {token}"}
        reads = [
            "/api/v1/search?q=revocation",
            f"/api/v1/files/{stored.file_id}",
            f"/api/v1/files/{stored.file_id}/content",
        ]
        async with httpx.AsyncClient() as http:
            for path in reads:
                response = await http.get(f"{pipeline.facade_url}{path}", headers=bearer)
                assert response.status_code == 200, (path, response.text)
            revoked = await http.post(
                f"{pipeline.auth_url}/oauth2/revoke",
                data={"token": token},
                auth=(str(account.client_id), secret),
            )
            assert revoked.status_code == 200, revoked.text
            # The very next request: no waiting for the revocation to spread.
            for path in reads:
                response = await http.get(f"{pipeline.facade_url}{path}", headers=bearer)
                assert response.status_code == 401, (path, response.text)
                assert "revoked" in response.json()["detail"]

        # The client still holds the revoked token: its upload command carries it to Kafka
        # (no placement check: its 401 would make the client fetch a new token first).
        assert await client.token() == token
        (handle,) = await client.upload_many(
            [UploadRequest(source=b"after the revocation", filename="b.txt")],
            check_placement=False,
        )
        with pytest.raises(Rejected) as refused:
            await handle.wait(60)
        assert refused.value.reason == "invalid_token"
        assert "revoked" in refused.value.detail

    # A fresh token of the same account works: only the revoked one is refused.
    async with ArtStoreClient(account) as fresh:
        assert await fresh.token() != token
        await (await fresh.upload(b"with a new token", filename="c.txt")).wait(60)
