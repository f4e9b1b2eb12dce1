"""POST /oauth2/token: RFC 6749 §4.4 client credentials, §5.1 responses and §5.2 errors."""

from __future__ import annotations

import base64

import jwt
import pytest

from tests.integration.auth.conftest import AuthHarness, Client

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
async def producer(harness: AuthHarness) -> Client:
    return await harness.create("producer", "user")


def assert_error(response: object, status: int, error: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.json()["error"] == error  # type: ignore[attr-defined]
    assert response.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]


async def test_basic_auth_issues_an_rfc9068_token(harness: AuthHarness, producer: Client) -> None:
    response = await harness.token(producer)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body
    assert set(body["scope"].split()) == {"files:write", "files:read", "files:delete",
                                          "metadata:write"}  # fmt: skip
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == harness.runtime.keys.signing_key().kid
    claims = await harness.runtime.verifier.verify(body["access_token"])
    raw = claims.claims
    for name in ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "role"):
        assert name in raw
    assert raw["client_id"] == producer.client_id
    assert raw["role"] == "user"
    assert raw["exp"] - raw["iat"] == 900


async def test_post_auth_and_json_alias(harness: AuthHarness, producer: Client) -> None:
    response = await harness.http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": producer.client_id,
            "client_secret": producer.secret,
        },
    )
    assert response.status_code == 200
    alias = await harness.http.post(
        "/api/v1/auth/token",
        json={"client_id": producer.client_id, "client_secret": producer.secret},
    )
    assert alias.status_code == 200
    assert alias.headers["cache-control"] == "no-store"
    bad = await harness.http.post(
        "/api/v1/auth/token", json={"client_id": producer.client_id, "client_secret": "nope"}
    )
    assert_error(bad, 401, "invalid_client")


async def test_basic_credentials_are_form_urlencoded(harness: AuthHarness) -> None:
    created = await harness.http.post(
        "/api/v1/accounts", json={"name": "encoded"}, headers=await harness.admin_headers()
    )
    client = Client(created.json()["id"], created.json()["client_id"], "")
    rotated = await harness.http.post(
        f"/api/v1/accounts/{client.id}/rotate-secret",
        json={"secret": "Sp3cial+chars:and%signs-0123456789ABC"},
        headers=await harness.admin_headers(),
    )
    assert rotated.status_code == 200, rotated.text
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client.client_id)}:{quote_plus('Sp3cial+chars:and%signs-0123456789ABC')}"
    response = await harness.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()},
    )
    assert response.status_code == 200, response.text


async def test_scope_down_scoping(harness: AuthHarness, producer: Client) -> None:
    response = await harness.token(producer, "files:read")
    assert response.json()["scope"] == "files:read"
    claims = await harness.runtime.verifier.verify(response.json()["access_token"])
    assert claims.scopes == {"files:read"}


async def test_invalid_scope(harness: AuthHarness, producer: Client) -> None:
    assert_error(await harness.token(producer, "accounts:admin"), 400, "invalid_scope")
    assert_error(await harness.token(producer, "root"), 400, "invalid_scope")
    assert_error(await harness.token(producer, "files:read  files:write"), 400, "invalid_scope")


async def test_invalid_request(harness: AuthHarness, producer: Client) -> None:
    no_grant = await harness.http.post("/oauth2/token", data={}, headers=producer.basic())
    assert_error(no_grant, 400, "invalid_request")
    as_json = await harness.http.post(
        "/oauth2/token", json={"grant_type": "client_credentials"}, headers=producer.basic()
    )
    assert_error(as_json, 400, "invalid_request")
    repeated = await harness.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials&scope=files:read&scope=files:write",
        headers={"Content-Type": FORM, **producer.basic()},
    )
    assert_error(repeated, 400, "invalid_request")
    two_methods = await harness.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_secret": producer.secret},
        headers=producer.basic(),
    )
    assert_error(two_methods, 400, "invalid_request")


async def test_invalid_client_is_401_with_a_basic_challenge(
    harness: AuthHarness, producer: Client
) -> None:
    cases = [
        producer.basic("wrong-secret"),
        Client("", "sa_dev_nobody_00000000", "x").basic(),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {},
    ]
    for headers in cases:
        response = await harness.http.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, headers=headers
        )
        assert_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic realm=")


async def test_unsupported_grant_type(harness: AuthHarness, producer: Client) -> None:
    for grant in ("password", "authorization_code", "refresh_token"):
        response = await harness.http.post(
            "/oauth2/token", data={"grant_type": grant}, headers=producer.basic()
        )
        assert_error(response, 400, "unsupported_grant_type")


async def test_suspended_client_is_unauthorized_client(harness: AuthHarness) -> None:
    client = await harness.create("to-suspend")
    suspended = await harness.http.post(
        f"/api/v1/accounts/{client.id}/suspend", headers=await harness.admin_headers()
    )
    assert suspended.json()["status"] == "suspended"
    assert_error(await harness.token(client), 400, "unauthorized_client")
    await harness.http.post(
        f"/api/v1/accounts/{client.id}/activate", headers=await harness.admin_headers()
    )
    assert (await harness.token(client)).status_code == 200


async def test_well_known_documents(harness: AuthHarness) -> None:
    jwks = await harness.http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert "max-age" in jwks.headers["cache-control"]
    kids = {k["kid"] for k in jwks.json()["keys"]}
    assert harness.runtime.keys.signing_key().kid in kids
    assert all("d" not in k and "p" not in k for k in jwks.json()["keys"])
    meta = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == harness.runtime.auth_settings.issuer
    assert meta["token_endpoint"].endswith("/oauth2/token")
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
    assert "files:write" in meta["scopes_supported"]


async def test_health_and_metrics(harness: AuthHarness, producer: Client) -> None:
    assert (await harness.http.get("/health/live")).status_code == 200
    ready = await harness.http.get("/health/ready")
    assert ready.status_code == 200, ready.text
    await harness.token(producer)
    text = (await harness.http.get("/metrics")).text
    assert 'artstore_auth_tokens_issued_total{role="user"}' in text
    assert "artstore_auth_outbox_pending" in text
