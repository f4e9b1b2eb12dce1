"""Account changes the auth service refuses reach ``<prefix>.audit`` like the changes do:
unauthorised, forbidden, invalid, or against the rules, naming the caller when its token was
good; reads are not audited, and a flood from one source cannot fill the outbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from auth.app import AuthRuntime, create_app
from base.settings import Settings
from events import Topic, create_topics
from tests.helpers import Received, read_events
from tests.integration.auth.conftest import ISSUER, AuthHarness, Clock, auth_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


@pytest.fixture(scope="module", autouse=True)
async def topics(settings: Settings) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())


async def audited(harness: AuthHarness, settings: Settings, **match: Any) -> dict[str, Any]:
    """The audit event on the topic whose fields include ``match``, once the outbox is relayed."""
    await harness.runtime.relay.drain()

    def entries(got: list[Received]) -> list[dict[str, Any]]:
        found = [event.data.model_dump(mode="json") for _, event in got]
        return [e for e in found if all(e.get(k) == v for k, v in match.items())]

    received = await read_events(settings, [Topic.AUDIT], until=lambda got: bool(entries(got)))
    (entry,) = entries(received)
    return entry


async def test_a_caller_without_accounts_admin_is_refused_and_named(
    harness: AuthHarness, settings: Settings
) -> None:
    user = await harness.create("refused-user")
    headers = {"Authorization": f"Bearer {await harness.access_token(user)}"}
    created = await harness.http.post(
        "/api/v1/accounts", json={"name": "not-by-a-user"}, headers=headers
    )
    assert created.status_code == 403
    suspended = await harness.http.post(f"/api/v1/accounts/{user.id}/suspend", headers=headers)
    assert suspended.status_code == 403

    entry = await audited(
        harness,
        settings,
        action="account.create_refused",
        actor=user.client_id,
        outcome="failure",
    )
    assert "accounts:admin" in entry["reason"]
    assert entry["details"] == {"status": 403, "error": "insufficient_scope"}
    entry = await audited(harness, settings, action="account.suspend_refused", actor=user.client_id)
    # The subject is the account the change was for, by its client id, as for the changes.
    assert entry["subject"] == user.client_id
    assert entry["details"]["account_id"] == user.id


async def test_changes_without_a_good_token_are_refused_and_audited_without_an_actor(
    harness: AuthHarness, settings: Settings
) -> None:
    target = await harness.create("rotated-by-nobody")
    missing = await harness.http.post(f"/api/v1/accounts/{target.id}/rotate-secret")
    forged = await harness.http.patch(
        f"/api/v1/accounts/{target.id}",
        json={"description": "forged"},
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert (missing.status_code, forged.status_code) == (401, 401)

    entry = await audited(
        harness, settings, action="account.secret_rotation_refused", subject=target.client_id
    )
    assert entry["actor"] is None
    assert entry["outcome"] == "failure"
    entry = await audited(
        harness, settings, action="account.update_refused", subject=target.client_id
    )
    assert entry["actor"] is None
    assert entry["details"]["error"] == "invalid_token"


async def test_invalid_and_rule_breaking_changes_by_an_admin_are_audited(
    harness: AuthHarness, settings: Settings
) -> None:
    headers = await harness.admin_headers()
    http = harness.http
    bad_name = await http.post("/api/v1/accounts", json={"name": "Not A Name!"}, headers=headers)
    bad_body = await http.post(
        "/api/v1/accounts", json={"name": "fine-name", "rate_limit": -5}, headers=headers
    )
    protected = await http.delete(f"/api/v1/accounts/{harness.admin.id}", headers=headers)
    nobody = uuid.uuid4()
    unknown = await http.post(f"/api/v1/accounts/{nobody}/activate", headers=headers)
    statuses = [r.status_code for r in (bad_name, bad_body, protected, unknown)]
    assert statuses == [422, 422, 409, 404]

    admin = harness.admin.client_id
    refusals = [
        await audited(
            harness,
            settings,
            action="account.create_refused",
            actor=admin,
            details={"status": 422, "error": "InvalidAccount"},
        ),
        await audited(
            harness,
            settings,
            action="account.create_refused",
            actor=admin,
            details={"status": 422, "error": "invalid_request"},
        ),
    ]
    assert "rate_limit" in refusals[1]["reason"]
    deleted = await audited(harness, settings, action="account.delete_refused", actor=admin)
    assert deleted["subject"] == admin
    activated = await audited(
        harness, settings, action="account.activate_refused", subject=str(nobody)
    )
    assert activated["actor"] == admin
    assert activated["details"] == {"status": 404, "error": "AccountNotFound"}


async def test_reads_refused_are_not_audited(harness: AuthHarness) -> None:
    relay = harness.runtime.relay
    await relay.drain()
    listed = await harness.http.get("/api/v1/accounts")
    one = await harness.http.get(f"/api/v1/accounts/{harness.admin.id}")
    assert (listed.status_code, one.status_code) == (401, 401)
    assert await relay.pending() == 0


@pytest.fixture
async def strict_source(settings: Settings, redis_namespace: str) -> AsyncIterator[Any]:
    """An auth app allowing 3 failed authentications per source and window."""
    policy = auth_settings(f"{redis_namespace}strict:", failed_auth_limit_per_source=3)
    app = create_app(settings, policy, clock=Clock(), background=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield app, http


async def test_a_flood_without_tokens_is_audited_up_to_the_source_limit(
    strict_source: Any,
) -> None:
    app, http = strict_source
    runtime: AuthRuntime = app.state.runtime
    await runtime.relay.drain()
    for n in range(5):
        refused = await http.post("/api/v1/accounts", json={"name": f"flood-{n}"})
        assert refused.status_code == 401
    assert await runtime.relay.pending() == 3
    metrics = (await http.get("/metrics")).text
    (line,) = (
        m for m in metrics.splitlines() if m.startswith("artstore_auth_unaudited_refusals_total ")
    )
    assert float(line.split()[-1]) == 2
