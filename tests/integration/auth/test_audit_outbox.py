"""Audit facts go through the transactional outbox to ``<prefix>.audit`` on the real broker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from auth.app import create_app
from base.settings import Settings
from events import AuditRecorded, Topic, create_topics
from tests.helpers import read_events
from tests.integration.auth.conftest import ADMIN_SECRET, ISSUER, Clock, auth_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


async def test_issue_failure_and_admin_actions_reach_the_audit_topic(
    settings: Settings, redis_namespace: str
) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    app = create_app(settings, auth_settings(redis_namespace), clock=Clock(), background=False)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        relay = runtime.relay
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            from auth import account_store

            async with runtime.engine.connect() as conn:
                admin = await account_store.by_name(conn, "admin")
            assert admin is not None
            ok = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(admin.client_id, ADMIN_SECRET),
            )
            bad = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(admin.client_id, "wrong"),
            )
            assert (ok.status_code, bad.status_code) == (200, 401)
            token = ok.json()["access_token"]
            created = await http.post(
                "/api/v1/accounts",
                json={"name": "audited"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.status_code == 201
            assert await relay.pending() >= 4  # bootstrap, issue, failure, create
            # Kafka is reached only by the relay: the rows were written with the changes.
            published = await relay.drain()
            assert published >= 4
            assert await relay.pending() == 0

    wanted = {"token.issued", "token.failed", "account.created"}
    received = await read_events(
        settings,
        [Topic.AUDIT],
        until=lambda got: wanted <= {event.data.action for _, event in got},
    )
    assert all(isinstance(event.data, AuditRecorded) for _, event in received)
    seen: list[dict[str, Any]] = [event.data.model_dump() for _, event in received]
    failed = next(s for s in seen if s["action"] == "token.failed")
    assert failed["outcome"] == "failure"
    assert failed["subject"] == admin.client_id
    assert all(ADMIN_SECRET not in str(s) for s in seen)
    created_fact = next(
        s for s in seen if s["action"] == "account.created" and s["details"]["name"] == "audited"
    )
    assert created_fact["actor"] == admin.client_id
