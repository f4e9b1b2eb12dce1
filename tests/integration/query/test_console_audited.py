"""What the operator's console changes, and what it refuses, reaches ``artstore.audit`` as the
API's requests do: sign-in and sign-out, mode changes, account changes, downloads; refusals for a
missing scope, a bad form, a stale CSRF token or no session — each with its actor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from base.settings import Settings
from events import Topic
from producers import ArtStoreClient
from tests.console_support import Console, credentials
from tests.helpers import Received, read_events, wait_until
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


def _field(entry: dict[str, Any], name: str) -> Any:
    value: Any = entry
    for part in name.split("__"):  # details__name: entry["details"]["name"]
        value = value.get(part) if isinstance(value, dict) else None
    return value


def entries(received: list[Received], **match: Any) -> list[dict[str, Any]]:
    """Audit events among ``received`` (payload, envelope ``source`` and ``correlation_id``)
    with every field of ``match``."""
    found = []
    for _, event in received:
        entry = {
            "source": event.envelope.source,
            "correlation_id": event.envelope.correlation_id,
            **event.data.model_dump(mode="json"),
        }
        if all(_field(entry, k) == v for k, v in match.items()):
            found.append(entry)
    return found


async def audited(settings: Settings, **match: Any) -> dict[str, Any]:
    """The one audit event on the topic matching ``match``, once it is there."""
    received = await read_events(
        settings, [Topic.AUDIT], until=lambda got: bool(entries(got, **match)), deadline_s=60
    )
    (entry,) = entries(received, **match)
    return entry


async def test_sign_in_sign_out_and_a_refused_sign_in_are_audited(
    pipeline: Pipeline, settings: Settings
) -> None:
    admin = pipeline.admin_client_id
    async with Console(pipeline) as console:
        refused = await console.sign_in(admin, "not-the-secret-at-all-0123456789")
        assert refused.status_code == 401
        assert (await console.sign_in(admin, pipeline.admin_secret)).status_code == 303
        assert (await console.submit("/console/signout")).status_code == 303
    entry = await audited(settings, action="console.sign_in_refused", subject=admin)
    assert (entry["actor"], entry["outcome"], entry["source"]) == (
        None,
        "failure",
        "artstore-facade",
    )
    assert entry["details"]["door"] == "console"
    signed_in = await audited(settings, action="console.signed_in", actor=admin)
    assert signed_in["subject"] == admin
    await audited(settings, action="console.signed_out", actor=admin, outcome="success")


async def until_mode(pipeline: Pipeline, mode: str) -> None:
    """Until the index shows the module's element in ``mode`` (the console checks against it),
    and, in a mode that takes uploads, taking them again (the SDK checks that)."""
    async with ArtStoreClient(pipeline.client_settings()) as client:

        async def shown() -> bool:
            return any(
                e["element_id"] == pipeline.element_id
                and e["mode"] == mode
                and (mode not in ("edit", "rw") or e.get("accepting_uploads") is not False)
                for e in await client.elements()
            )

        await wait_until(shown, 60, message=f"element in mode {mode}")


async def test_mode_changes_from_the_console_and_their_refusals_are_audited(
    pipeline: Pipeline, settings: Settings
) -> None:
    admin, element = pipeline.admin_client_id, pipeline.element_id
    reader = await pipeline.create_account(f"viewer{uuid.uuid4().hex[:6]}", role="readonly")
    async with Console(pipeline) as console:
        answer = await console.sign_in(*credentials(reader))
        assert answer.status_code == 303, answer.text
        forbidden = await console.submit(
            "/console/elements/mode", element_id=element, target_mode="ro", reason="mine now"
        )
        assert forbidden.status_code == 403
    async with Console(pipeline) as console:
        assert (await console.sign_in(admin, pipeline.admin_secret)).status_code == 303
        skipping = await console.submit(
            "/console/elements/mode", element_id=element, target_mode="ar", reason="to tape"
        )
        assert skipping.status_code == 409
        stale = await console.submit(
            "/console/elements/mode",
            element_id=element,
            target_mode="ro",
            reason="forged",
            csrf_token="from-another-page",
        )
        assert stale.status_code == 403
        done = await console.submit(
            "/console/elements/mode", element_id=element, target_mode="ro", reason="closed"
        )
        assert done.status_code == 303
        await until_mode(pipeline, "ro")
        reopened = await console.submit(
            "/console/elements/mode",
            element_id=element,
            target_mode="rw",
            reason="reopened",
            confirm="yes",
        )
        assert reopened.status_code == 303
        await until_mode(pipeline, "rw")

    refused = "element.mode_change_refused"
    entry = await audited(settings, action=refused, actor=reader.client_id)
    assert entry["subject"] == element
    assert "elements:admin" in entry["reason"]
    entry = await audited(
        settings, action=refused, actor=admin, details={"status": 409, "door": "console"}
    )
    assert entry["subject"] == element
    assert "ar" in entry["reason"]
    entry = await audited(
        settings, action=refused, actor=admin, details={"status": 403, "door": "console"}
    )
    assert "CSRF" in entry["reason"]
    # Accepted, the change is carried out and audited by the element's worker.
    for reason in ("closed", "reopened"):
        changed = await audited(settings, action="element.mode_changed", reason=reason)
        assert (changed["actor"], changed["subject"]) == (admin, element)


async def test_account_changes_from_the_console_are_audited_once_whoever_refuses(
    pipeline: Pipeline, settings: Settings
) -> None:
    admin = pipeline.admin_client_id
    reader = await pipeline.create_account(f"looker{uuid.uuid4().hex[:6]}", role="readonly")
    target = str(uuid.uuid4())
    async with Console(pipeline) as console:
        answer = await console.sign_in(*credentials(reader))
        assert answer.status_code == 303, answer.text
        forbidden = await console.submit("/console/accounts", name="by-a-reader", role="user")
        assert forbidden.status_code == 403
        suspend = await console.submit(f"/console/accounts/{target}/suspend")
        assert suspend.status_code == 403
    async with Console(pipeline) as console:
        assert (await console.sign_in(admin, pipeline.admin_secret)).status_code == 303
        created = await console.submit("/console/accounts", name="made-in-console", role="user")
        assert created.status_code == 201
        invalid = await console.submit("/console/accounts", name="Not Valid!", role="user")
        assert invalid.status_code == 422
    async with Console(pipeline) as nobody:
        signed_out = await nobody.submit("/console/accounts", name="no-session", role="user")
        assert signed_out.status_code == 303

    entry = await audited(settings, action="account.create_refused", actor=reader.client_id)
    assert (entry["subject"], entry["source"]) == ("by-a-reader", "artstore-facade")
    assert "accounts:admin" in entry["reason"]
    entry = await audited(settings, action="account.suspend_refused", subject=target)
    assert entry["actor"] == reader.client_id
    entry = await audited(
        settings, action="account.create_refused", source="artstore-facade", subject="accounts"
    )
    assert entry["actor"] is None
    assert "signed in" in entry["reason"]
    # Passed on to the auth service, the change is audited there, refusal included, and the
    # console does not record the refusal a second time.
    await pipeline.relay_auth_audit()
    created_entry = await audited(
        settings, action="account.created", details__name="made-in-console"
    )
    assert created_entry["actor"] == admin
    by_auth = await audited(
        settings, action="account.create_refused", actor=admin, source="artstore-auth"
    )
    assert "Not Valid!" in by_auth["reason"]
    async with ArtStoreClient(pipeline.client_settings()) as client:
        token = await client.token()
    async with httpx.AsyncClient(
        base_url=pipeline.facade_url, headers={"Authorization": f"Bearer {token}"}
    ) as http:

        async def relayed() -> bool:
            metrics = (await http.get("/metrics")).text
            (line,) = (
                m for m in metrics.splitlines() if m.startswith("artstore_facade_audit_pending ")
            )
            return float(line.split()[-1]) == 0

        await wait_until(relayed, 60, message="the facade's audit journal relayed")
    everything = await read_events(settings, [Topic.AUDIT], until=lambda got: True, settle_ms=500)
    assert not entries(everything, source="artstore-facade", subject="Not Valid!")


async def test_a_download_from_the_console_is_audited(
    pipeline: Pipeline, settings: Settings
) -> None:
    admin = pipeline.admin_client_id
    async with ArtStoreClient(pipeline.client_settings()) as client:
        handle = await client.upload(b"read at the console", filename="console.txt")
        await handle.wait()
    file_id = str(handle.file_id)
    async with Console(pipeline) as console:
        assert (await console.sign_in(admin, pipeline.admin_secret)).status_code == 303
        got = await console.http.get(f"/console/files/{file_id}/content")
        assert got.content == b"read at the console"
        correlation = got.headers["X-Correlation-ID"]
    entry = await audited(settings, action="file.downloaded", correlation_id=correlation)
    assert (entry["subject"], entry["actor"], entry["details"]["door"]) == (
        file_id,
        admin,
        "console",
    )
