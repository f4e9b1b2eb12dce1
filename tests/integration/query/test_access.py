"""Every endpoint but health wants a valid token with the right scope; hostile input is a 400."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from base.settings import Settings
from events import FileStored
from tests.helpers import wait_until
from tests.integration.query.support import (
    FacadeHarness,
    FactPublisher,
    facade_harness,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
RECORD = make_record(filename="access.txt", description="access control")
FID = RECORD.file_id

# (method, path, scope that suffices, json body)
ENDPOINTS = [
    ("GET", "/api/v1/search?q=access", "files:read", None),
    ("GET", f"/api/v1/files/{FID}", "files:read", None),
    ("GET", f"/api/v1/files/{FID}/content", "files:read", None),
    ("HEAD", f"/api/v1/files/{FID}/content", "files:read", None),
    ("GET", f"/api/v1/uploads/{FID}", "files:write", None),
    ("GET", "/api/v1/elements", "files:read", None),
    ("POST", "/api/v1/uploads?filename=a.txt", "files:write", None),
    ("PATCH", f"/api/v1/files/{FID}", "metadata:write", {"description": "x"}),
    ("DELETE", f"/api/v1/files/{FID}", "files:delete", None),
    ("POST", "/api/v1/elements/se-01/mode", "elements:admin", {"target_mode": "ro", "reason": "r"}),
    ("GET", "/metrics", "audit:read", None),
]


@pytest.fixture(scope="module")
async def facade(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[FacadeHarness]:
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        async with FactPublisher(topics) as pub:
            await pub.publish([FileStored(file=RECORD)])

        async def indexed() -> bool:
            response = await harness.get(f"/api/v1/files/{FID}")
            return response.status_code == 200

        await wait_until(indexed, timeout=30)
        yield harness


def _other_scope(scope: str) -> str:
    return "audit:read" if scope != "audit:read" else "files:read"


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
async def test_missing_token_is_401(
    facade: FacadeHarness, method: str, path: str, scope: str, body: object
) -> None:
    response = await facade.http.request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
async def test_expired_token_is_401(
    facade: FacadeHarness, method: str, path: str, scope: str, body: object
) -> None:
    expired = facade.token(
        scope, issued_at=datetime.now(UTC) - timedelta(hours=2), ttl=timedelta(minutes=15)
    )
    response = await facade.http.request(method, path, headers=expired, json=body)
    assert response.status_code == 401
    if method != "HEAD":
        assert "expired" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ENDPOINTS)
async def test_token_without_the_scope_is_403(
    facade: FacadeHarness, method: str, path: str, scope: str, body: object
) -> None:
    response = await facade.http.request(
        method, path, headers=facade.token(_other_scope(scope)), json=body
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_a_forged_token_is_401(facade: FacadeHarness) -> None:
    from auth.testing import TestSigner

    forged = TestSigner(slot=3).issue(scopes={"files:read"})
    response = await facade.http.get(
        "/api/v1/search", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401


async def test_health_needs_no_token(facade: FacadeHarness) -> None:
    assert (await facade.http.get("/health/live")).status_code == 200
    assert (await facade.http.get("/health/ready")).status_code == 200
    assert (await facade.http.get("/openapi.json")).status_code == 200


async def test_metrics_are_prometheus_text(facade: FacadeHarness) -> None:
    response = await facade.get("/metrics", "audit:read")
    assert response.status_code == 200
    assert "artstore_facade_requests_total" in response.text


HOSTILE = [
    "\x00",
    "a\x00b",
    "'; DROP TABLE files; --",
    "!!!(((",
    "a <-> b",
    ":*",
    "&|!",
    '"unterminated',
    "-",
    "or or or",
    "\\",
    "%",
    "_",
    "9" * 40,
    "-1",
    "1e309",
    "NaN",
    "2026-13-45",
    "x" * 5000,
    "Ω≈ç√∫",
    "\u202e",
    "{}",
    '{"f":"x","v":1,"id":"not-a-uuid"}',
]
PARAMETERS = [
    "q",
    "filename",
    "extension",
    "tag",
    "tags",
    "username",
    "size_min",
    "size_max",
    "created_from",
    "created_to",
    "element",
    "retention_policy",
    "language",
    "attr.department",
    "sort",
    "limit",
    "cursor",
    "unknown",
    "attr.bad key!",
]


async def test_hostile_search_parameters_are_400_never_500(facade: FacadeHarness) -> None:
    rng = random.Random(20261125)
    alphabet = string.printable + "ёЖ日本\u0301\ufeff"
    cases = [(p, v) for p in PARAMETERS for v in HOSTILE]
    for _ in range(300):
        params = [
            (
                rng.choice(PARAMETERS),
                "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))),
            )
            for _ in range(rng.randint(1, 4))
        ]
        cases.append(params)  # type: ignore[arg-type]
    headers = facade.token("files:read")
    for case in cases:
        params = case if isinstance(case, list) else [case]
        response = await facade.http.get("/api/v1/search", params=params, headers=headers)
        assert response.status_code in (200, 400), (params, response.status_code, response.text)
        if response.status_code == 400:
            assert response.json()["detail"]
    # Bytes no client library would send: raw, invalid percent-encodings.
    for raw in ("q=%ED%A0%80", "q=%FF%FE", "q=%00", "%FF=1", "limit=%C0%80", "q=a&q=b", "q"):
        response = await facade.http.get(f"/api/v1/search?{raw}", headers=headers)
        assert response.status_code in (200, 400), (raw, response.status_code, response.text)


async def test_hostile_path_and_body_values_are_4xx(facade: FacadeHarness) -> None:
    headers = facade.token("files:read", "metadata:write", "elements:admin", "files:write")
    for path in ("/api/v1/files/not-a-uuid", "/api/v1/files/%00", "/api/v1/uploads/1"):
        assert (await facade.http.get(path, headers=headers)).status_code == 400
    patch = await facade.http.patch(f"/api/v1/files/{FID}", headers=headers, json={"nope": 1})
    assert patch.status_code == 400
    patch = await facade.http.patch(f"/api/v1/files/{FID}", headers=headers, content=b"\xff{")
    assert patch.status_code == 400
    mode = await facade.http.post(
        "/api/v1/elements/Bad!/mode", headers=headers, json={"target_mode": "ro", "reason": "r"}
    )
    assert mode.status_code == 400
    mode = await facade.http.post(
        "/api/v1/elements/se-01/mode", headers=headers, json={"target_mode": "zz", "reason": "r"}
    )
    assert mode.status_code == 400
    upload = await facade.http.post(
        "/api/v1/uploads", params={"filename": "a", "ttl_days": "900"}, headers=headers, content=b""
    )
    assert upload.status_code == 400
    upload = await facade.http.post(
        "/api/v1/uploads",
        params={"filename": "a", "custom_attributes": "[1]"},
        headers=headers,
        content=b"",
    )
    assert upload.status_code == 400
    unknown = await facade.http.get(f"/api/v1/uploads/{uuid.uuid4()}", headers=headers)
    assert unknown.status_code == 404
