"""RFC 7662 introspection and RFC 7009 revocation, with the deny-list in Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest

from auth.errors import InvalidToken
from tests.integration.auth.conftest import AuthHarness, Client

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
async def resource(harness: AuthHarness) -> Client:
    return await harness.create("resource-server", "readonly")


async def introspect(harness: AuthHarness, caller: Client, token: str) -> dict[str, object]:
    response = await harness.http.post(
        "/oauth2/introspect", data={"token": token}, headers=caller.basic()
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return body


async def test_active_token_is_described(harness: AuthHarness, resource: Client) -> None:
    owner = await harness.create("introspected")
    token = await harness.access_token(owner, "files:read")
    body = await introspect(harness, resource, token)
    assert body["active"] is True
    assert body["client_id"] == owner.client_id
    assert body["scope"] == "files:read"
    assert body["username"] == "introspected"
    assert body["token_type"] == "Bearer"


async def test_garbage_and_expired_are_inactive(harness: AuthHarness, resource: Client) -> None:
    for garbage in ("garbage", "a.b.c", ""):
        response = await harness.http.post(
            "/oauth2/introspect", data={"token": garbage}, headers=resource.basic()
        )
        if garbage:
            assert response.json() == {"active": False}
        else:
            assert response.status_code == 400
    owner = await harness.create("short-lived")
    token = await harness.access_token(owner)
    harness.clock.advance(timedelta(minutes=16))
    assert await introspect(harness, resource, token) == {"active": False}


async def test_introspection_needs_client_authentication(harness: AuthHarness) -> None:
    response = await harness.http.post("/oauth2/introspect", data={"token": "x"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_revoked_token_is_inactive_and_refused(
    harness: AuthHarness, resource: Client
) -> None:
    owner = await harness.create("revoker")
    token = await harness.access_token(owner)
    response = await harness.http.post(
        "/oauth2/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        headers=owner.basic(),
    )
    assert response.status_code == 200
    assert await introspect(harness, resource, token) == {"active": False}
    with pytest.raises(InvalidToken) as info:
        await harness.runtime.verifier.verify(token)
    assert info.value.reason == "revoked"
    again = await harness.http.post("/oauth2/revoke", data={"token": token}, headers=owner.basic())
    assert again.status_code == 200


async def test_revoking_unknown_tokens_is_200(harness: AuthHarness, resource: Client) -> None:
    for token in ("unknown", "a.b.c"):
        response = await harness.http.post(
            "/oauth2/revoke", data={"token": token}, headers=resource.basic()
        )
        assert response.status_code == 200
    hint = await harness.http.post(
        "/oauth2/revoke",
        data={"token": "x", "token_type_hint": "id_token"},
        headers=resource.basic(),
    )
    assert hint.status_code == 400
    assert hint.json()["error"] == "unsupported_token_type"


async def test_only_the_owner_or_an_admin_revokes(harness: AuthHarness, resource: Client) -> None:
    owner = await harness.create("victim")
    token = await harness.access_token(owner)
    stranger = await harness.http.post(
        "/oauth2/revoke", data={"token": token}, headers=resource.basic()
    )
    assert stranger.status_code == 400
    assert (await introspect(harness, resource, token))["active"] is True
    admin = await harness.http.post(
        "/oauth2/revoke", data={"token": token}, headers=harness.admin.basic()
    )
    assert admin.status_code == 200
    assert (await introspect(harness, resource, token))["active"] is False


async def test_tokens_of_a_suspended_account_are_inactive(
    harness: AuthHarness, resource: Client
) -> None:
    owner = await harness.create("suspended-owner")
    token = await harness.access_token(owner)
    await harness.http.post(
        f"/api/v1/accounts/{owner.id}/suspend", headers=await harness.admin_headers()
    )
    assert await introspect(harness, resource, token) == {"active": False}
