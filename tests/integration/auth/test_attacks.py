"""Account-side attacks: dead accounts, wrong and rotated secrets, reuse, timing, revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from auth.db import accounts
from tests.integration.auth.conftest import AuthHarness, Client

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def error_of(harness: AuthHarness, client: Client, secret: str | None = None) -> str:
    response = await harness.http.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, headers=client.basic(secret)
    )
    assert response.status_code != 200, response.text
    error: str = response.json()["error"]
    return error


async def test_wrong_secret_is_invalid_client(harness: AuthHarness) -> None:
    client = await harness.create("wrong-secret")
    assert await error_of(harness, client, "not-the-secret") == "invalid_client"
    assert await error_of(harness, client, "x" * 200) == "invalid_client"


async def test_deleted_account_can_no_longer_get_tokens(harness: AuthHarness) -> None:
    client = await harness.create("to-delete")
    deleted = await harness.http.delete(
        f"/api/v1/accounts/{client.id}", headers=await harness.admin_headers()
    )
    assert deleted.json()["status"] == "deleted"
    assert await error_of(harness, client) == "invalid_client"
    again = await harness.http.delete(
        f"/api/v1/accounts/{client.id}", headers=await harness.admin_headers()
    )
    assert again.status_code == 404


async def test_expired_secret_is_invalid_client(harness: AuthHarness) -> None:
    client = await harness.create("expiring")
    async with harness.runtime.engine.begin() as conn:
        await conn.execute(
            update(accounts)
            .where(accounts.c.client_id == client.client_id)
            .values(secret_expires_at=harness.clock() - timedelta(seconds=1))
        )
    assert await error_of(harness, client) == "invalid_client"
    shown = await harness.http.get(
        f"/api/v1/accounts/{client.id}", headers=await harness.admin_headers()
    )
    assert shown.json()["status"] == "expired"
    rotated = await harness.http.post(
        f"/api/v1/accounts/{client.id}/rotate-secret", headers=await harness.admin_headers()
    )
    fresh = Client(client.id, client.client_id, rotated.json()["client_secret"])
    assert (await harness.token(fresh)).status_code == 200


async def test_rotated_out_secret_works_only_within_its_grace_window(
    harness: AuthHarness,
) -> None:
    client = await harness.create("rotating")
    rotated = await harness.http.post(
        f"/api/v1/accounts/{client.id}/rotate-secret", headers=await harness.admin_headers()
    )
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    new = Client(client.id, client.client_id, rotated.json()["client_secret"])
    assert new.secret != client.secret
    assert (await harness.token(new)).status_code == 200
    assert (await harness.token(client)).status_code == 200  # old one, inside the grace window
    harness.clock.advance(timedelta(hours=1, seconds=1))
    assert await error_of(harness, client) == "invalid_client"
    assert (await harness.token(new)).status_code == 200


async def test_a_second_rotation_ends_the_first_grace_window(harness: AuthHarness) -> None:
    client = await harness.create("double-rotation")
    headers = await harness.admin_headers()
    first = await harness.http.post(f"/api/v1/accounts/{client.id}/rotate-secret", headers=headers)
    await harness.http.post(f"/api/v1/accounts/{client.id}/rotate-secret", headers=headers)
    assert await error_of(harness, client) == "invalid_client"
    middle = Client(client.id, client.client_id, first.json()["client_secret"])
    assert (await harness.token(middle)).status_code == 200


async def test_recent_secrets_cannot_be_reused(harness: AuthHarness) -> None:
    client = await harness.create("reuse")
    headers = await harness.admin_headers()
    chosen = [f"Chosen-Secret-{i}-abcdefghijklmnopqrstuvwxyz" for i in range(6)]
    for secret in chosen:
        ok = await harness.http.post(
            f"/api/v1/accounts/{client.id}/rotate-secret", json={"secret": secret}, headers=headers
        )
        assert ok.status_code == 200, ok.text
    for secret in chosen[-5:]:
        reuse = await harness.http.post(
            f"/api/v1/accounts/{client.id}/rotate-secret", json={"secret": secret}, headers=headers
        )
        assert reuse.status_code == 422
        assert "last 5 secrets" in reuse.json()["detail"]
    oldest = await harness.http.post(
        f"/api/v1/accounts/{client.id}/rotate-secret", json={"secret": chosen[0]}, headers=headers
    )
    assert oldest.status_code == 200  # out of the 5-deep history
    weak = await harness.http.post(
        f"/api/v1/accounts/{client.id}/rotate-secret", json={"secret": "short"}, headers=headers
    )
    assert weak.status_code == 422


async def test_only_a_real_secret_hash_costs_a_bcrypt_check(harness: AuthHarness) -> None:
    """A wrong secret costs one check per stored hash; an unknown or deleted client costs none
    (it waits as long as a check instead, so its refusal is not told apart by time)."""
    hasher = harness.runtime.tokens.hasher
    known = await harness.create("timing")
    gone = await harness.create("timing-gone")
    await harness.http.delete(f"/api/v1/accounts/{gone.id}", headers=await harness.admin_headers())
    for client, secret, checks in (
        (known, "wrong", 1),
        (Client("", "sa_dev_unknown_00000000", "x"), None, 0),
        (gone, None, 0),
    ):
        before = hasher.checks
        await error_of(harness, client, secret)
        assert hasher.checks - before == checks


async def test_system_accounts_are_protected(harness: AuthHarness) -> None:
    headers = await harness.admin_headers()
    url = f"/api/v1/accounts/{harness.admin.id}"
    assert (await harness.http.delete(url, headers=headers)).status_code == 409
    assert (await harness.http.post(f"{url}/suspend", headers=headers)).status_code == 409
    demote = await harness.http.patch(url, json={"role": "user"}, headers=headers)
    assert demote.status_code == 409


async def test_accounts_api_needs_accounts_admin(harness: AuthHarness) -> None:
    user = await harness.create("not-admin")
    token = await harness.access_token(user)
    response = await harness.http.get(
        "/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    anonymous = await harness.http.get("/api/v1/accounts")
    assert anonymous.status_code == 401
    forged = await harness.http.get(
        "/api/v1/accounts", headers={"Authorization": f"Bearer {token[:-4]}AAAA"}
    )
    assert forged.status_code == 401


async def test_account_crud(harness: AuthHarness) -> None:
    headers = await harness.admin_headers()
    client = await harness.create("crud", "auditor", description="reads audit", rate_limit=50)
    assert client.client_id.startswith("sa_dev_crud_")
    assert len(client.client_id.rsplit("_", 1)[1]) == 8
    got = (await harness.http.get(f"/api/v1/accounts/{client.id}", headers=headers)).json()
    assert got["role"] == "auditor"
    assert got["rate_limit"] == 50
    assert "secret_hash" not in got
    assert "client_secret" not in got
    patched = await harness.http.patch(
        f"/api/v1/accounts/{client.id}", json={"role": "readonly", "rate_limit": 7}, headers=headers
    )
    assert patched.json()["role"] == "readonly"
    assert patched.json()["rate_limit"] == 7
    dup = await harness.http.post("/api/v1/accounts", json={"name": "crud"}, headers=headers)
    assert dup.status_code == 409
    bad = await harness.http.post("/api/v1/accounts", json={"name": "Bad_Name"}, headers=headers)
    assert bad.status_code == 422
    listed = (await harness.http.get("/api/v1/accounts", headers=headers)).json()["items"]
    assert client.client_id in {a["client_id"] for a in listed}


async def test_bootstrap_is_idempotent(harness: AuthHarness) -> None:
    assert await harness.runtime.accounts.bootstrap_admin() is None
