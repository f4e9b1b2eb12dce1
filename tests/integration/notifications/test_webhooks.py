"""Signed notifications against the real stack: auth, facade, projector, an rw element, the
dispatcher, and real HTTP receivers on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from base.settings import Settings
from consumers.sql import asyncpg_dsn
from producers import Rejected, verify_webhook
from tests.helpers import wait_until
from tests.integration.notifications.support import (
    Account,
    Receiver,
    account,
    notification_settings,
    receiving,
    upload_with_wrong_checksum,
)
from tests.integration.notifications.support import (
    dispatching as run_dispatching,
)
from tests.pipeline import Pipeline, free_port, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]
NOTIFICATIONS = notification_settings()


def dispatching(
    settings: Settings, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[None]:
    return run_dispatching(
        settings, notification_settings(**overrides) if overrides else NOTIFICATIONS
    )


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with (
        running_pipeline(settings, redis_namespace, notifications=NOTIFICATIONS) as running,
        dispatching(settings),
    ):
        yield running


@pytest.fixture
async def alice(pipeline: Pipeline) -> AsyncIterator[Account]:
    created = await pipeline.create_account(f"alice-{uuid.uuid4().hex[:6]}")
    async with account(pipeline.facade_url, created) as a:
        yield a


@pytest.fixture
async def bob(pipeline: Pipeline) -> AsyncIterator[Account]:
    created = await pipeline.create_account(f"bob-{uuid.uuid4().hex[:6]}")
    async with account(pipeline.facade_url, created) as b:
        yield b


async def test_an_upload_stored_and_one_rejected_reach_a_real_receiver_signed(
    pipeline: Pipeline, alice: Account
) -> None:
    receiver = Receiver()
    async with receiving(receiver, free_port()) as url:
        hook = await alice.register(url, "upload.stored", "upload.rejected")
        assert hook["secret"].startswith("whsec_")
        handle = await alice.client.upload(io.BytesIO(b"signed notice"), filename="notice.txt")
        await handle.wait(timeout=60)
        rejected_id = await upload_with_wrong_checksum(pipeline.settings, alice.client)
        with pytest.raises(Rejected):
            await alice.client.handle(rejected_id).wait(timeout=60)
        await wait_until(lambda: len(receiver.received) >= 2, 60, message="two deliveries")

    by_kind = {}
    for got in receiver.received:
        # The signature proves the body came from ArtStore with this webhook's secret.
        verify_webhook(got.body, got.headers["x-artstore-signature"], hook["secret"])
        body = json.loads(got.body)
        assert got.headers["x-artstore-delivery"] == body["delivery_id"]
        assert got.headers["x-artstore-event"] == body["kind"]
        assert got.headers["x-artstore-attempt"] == "1"
        assert body["webhook_id"] == hook["webhook_id"]
        by_kind[body["kind"]] = body
    assert by_kind["upload.stored"]["data"]["file"]["file_id"] == str(handle.file_id)
    assert by_kind["upload.rejected"]["data"]["file_id"] == str(rejected_id)
    assert by_kind["upload.rejected"]["data"]["reason"] == "checksum_mismatch"

    async def logged() -> bool:
        log = await alice.deliveries(hook["webhook_id"])
        return len(log) == 2 and all(d["status"] == "delivered" for d in log)

    await wait_until(logged, 30, message="both deliveries logged as delivered")
    for delivery in await alice.deliveries(hook["webhook_id"]):
        assert delivery["attempts"] == 1
        assert delivery["log"][0]["status_code"] == 200
        assert delivery["log"][0]["error"] is None


async def test_a_receiver_that_is_down_gets_the_delivery_when_it_is_back(
    pipeline: Pipeline, alice: Account
) -> None:
    port = free_port()
    hook = await alice.register(f"http://127.0.0.1:{port}/hook", "upload.stored")
    handle = await alice.client.upload(io.BytesIO(b"while the receiver is down"), filename="d.txt")
    await handle.wait(timeout=60)

    async def first_attempt_failed() -> bool:
        log = await alice.deliveries(hook["webhook_id"])
        return bool(log) and log[0]["attempts"] >= 1

    await wait_until(first_attempt_failed, 60, message="a failed first attempt")
    [pending] = await alice.deliveries(hook["webhook_id"])
    assert pending["status"] == "pending"
    assert pending["log"][0]["status_code"] is None
    assert pending["log"][0]["error"]
    assert pending["next_attempt_at"] is not None

    receiver = Receiver()
    async with receiving(receiver, port):
        await wait_until(lambda: receiver.received, 60, message="the retried delivery")
    got = receiver.received[0]
    verify_webhook(got.body, got.headers["x-artstore-signature"], hook["secret"])
    assert got.headers["x-artstore-delivery"] == pending["delivery_id"]
    assert int(got.headers["x-artstore-attempt"]) >= 2

    async def delivered() -> bool:
        [d] = await alice.deliveries(hook["webhook_id"])
        return bool(d["status"] == "delivered")

    await wait_until(delivered, 30, message="the delivery logged as delivered")
    [done] = await alice.deliveries(hook["webhook_id"])
    assert done["log"][-1]["status_code"] == 200
    assert all(a["status_code"] is None for a in done["log"][:-1])


async def test_a_receiver_that_never_answers_well_is_marked_failed_after_the_last_retry(
    pipeline: Pipeline, alice: Account
) -> None:
    receiver = Receiver(status=500)
    async with receiving(receiver, free_port()) as url:
        hook = await alice.register(url, "upload.stored")
        handle = await alice.client.upload(io.BytesIO(b"to a broken receiver"), filename="b.txt")
        await handle.wait(timeout=60)

        async def failed() -> bool:
            log = await alice.deliveries(hook["webhook_id"])
            return bool(log) and log[0]["status"] == "failed"

        await wait_until(failed, 60, message="the delivery given up")
    [delivery] = await alice.deliveries(hook["webhook_id"])
    attempts = 1 + len(NOTIFICATIONS.retry_delays_s)
    assert delivery["attempts"] == attempts
    assert [a["status_code"] for a in delivery["log"]] == [500] * attempts
    assert len(set(receiver.delivery_ids())) == 1


async def test_a_slow_receiver_does_not_hold_up_another(pipeline: Pipeline, alice: Account) -> None:
    slow, fast = Receiver(hold=asyncio.Event()), Receiver()
    async with receiving(slow, free_port()) as slow_url, receiving(fast, free_port()) as fast_url:
        await alice.register(slow_url, "upload.stored")
        await alice.register(fast_url, "upload.stored")
        handle = await alice.client.upload(io.BytesIO(b"to both"), filename="both.txt")
        await handle.wait(timeout=60)
        await wait_until(slow.arrived.is_set, 60, message="the slow receiver called")
        # The slow one still holds its request: the fast one is served all the same.
        await wait_until(lambda: fast.received, 60, message="the fast receiver served")
        assert slow.hold is not None
        assert not slow.hold.is_set()
        slow.hold.set()


async def test_another_accounts_webhooks_are_invisible_and_hear_nothing(
    pipeline: Pipeline, alice: Account, bob: Account
) -> None:
    alices, bobs = Receiver(), Receiver()
    async with receiving(alices, free_port()) as a_url, receiving(bobs, free_port()) as b_url:
        hook = await alice.register(a_url, "upload.stored")
        await bob.register(b_url, "upload.stored")
        listed = (await bob.call("GET", "/api/v1/webhooks")).json()["items"]
        assert [h["url"] for h in listed] == [b_url]
        assert all("secret" not in h for h in listed)
        for method, path in [
            ("GET", f"/api/v1/webhooks/{hook['webhook_id']}"),
            ("GET", f"/api/v1/webhooks/{hook['webhook_id']}/deliveries"),
            ("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}"),
        ]:
            theirs = await bob.call(method, path)
            unknown = await bob.call(method, path.replace(hook["webhook_id"], str(uuid.uuid4())))
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json()["title"] == unknown.json()["title"]
        assert (
            await alice.call("GET", f"/api/v1/webhooks/{hook['webhook_id']}")
        ).status_code == 200

        handle = await alice.client.upload(io.BytesIO(b"alice's only"), filename="a.txt")
        await handle.wait(timeout=60)
        await wait_until(lambda: alices.received, 60, message="alice's delivery")
        theirs_done = await bob.client.upload(io.BytesIO(b"bob's only"), filename="b.txt")
        await theirs_done.wait(timeout=60)
        await wait_until(lambda: bobs.received, 60, message="bob's delivery")
    assert [json.loads(r.body)["data"]["file"]["file_id"] for r in alices.received] == [
        str(handle.file_id)
    ]
    assert [json.loads(r.body)["data"]["file"]["file_id"] for r in bobs.received] == [
        str(theirs_done.file_id)
    ]


@pytest.mark.parametrize(
    ("body", "status", "parameter"),
    [
        ({"url": "ftp://example.com/x", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "https://u:p@example.com/x", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://169.254.169.254/latest", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://10.0.0.1/x", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://[::1]:9/x", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://localhost:9/x", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://167772161/x", "kinds": ["upload.stored"]}, 400, "url"),  # 10.0.0.1
        ({"url": "http://0xa9.254.169.254/", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://[64:ff9b::a9fe:a9fe]/", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://[2002:a00:1::1]/", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "http://" + "é" * 60 + ".com/", "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "https://e.com/" + "a" * 3000, "kinds": ["upload.stored"]}, 400, "url"),
        ({"url": "https://example.com/x", "kinds": ["file.deleted"]}, 400, "kinds.0"),
        ({"url": "https://example.com/x", "kinds": []}, 400, "kinds"),
        ({"url": "https://example.com/x"}, 400, "kinds"),
        (
            {"url": "https://example.com/x", "kinds": ["upload.stored"], "secret": "x"},
            400,
            "secret",
        ),
        ([1, 2, 3], 400, "body"),
        (
            {"url": "https://example.com/x", "kinds": ["upload.stored"], "description": "a\x00b"},
            400,
            "description",
        ),
    ],
)
async def test_hostile_registrations_are_refused_with_a_reason(
    pipeline: Pipeline, alice: Account, body: Any, status: int, parameter: str
) -> None:
    answer = await alice.call("POST", "/api/v1/webhooks", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["parameter"] == parameter
    assert (await alice.call("GET", "/api/v1/webhooks")).json()["items"] == []


async def test_a_huge_or_broken_body_and_a_missing_token_are_refused(
    pipeline: Pipeline, alice: Account
) -> None:
    huge = await alice.call("POST", "/api/v1/webhooks", content=b"{" + b" " * 100_000 + b"}")
    assert huge.status_code == 413
    broken = await alice.call("POST", "/api/v1/webhooks", content=b"{not json")
    assert broken.status_code == 400
    async with httpx.AsyncClient(base_url=pipeline.facade_url) as http:
        anonymous = await http.post("/api/v1/webhooks", json={"url": "https://e.com"})
    assert anonymous.status_code == 401
    bad_page = await alice.call("GET", f"/api/v1/webhooks/{uuid.uuid4()}/deliveries?limit=100000")
    assert bad_page.status_code == 400
    hook = await alice.register("https://hooks.example.com/h", "upload.stored")
    for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        # Valid times whose UTC form is outside the years the database stores.
        out_of_range = await alice.call(
            "GET", f"/api/v1/webhooks/{hook['webhook_id']}/deliveries", params={"before": edge}
        )
        assert out_of_range.status_code == 400, out_of_range.text
        assert out_of_range.json()["parameter"] == "before"


async def test_registering_and_deleting_are_audited_and_deleting_cancels_pending_deliveries(
    pipeline: Pipeline, alice: Account
) -> None:
    port = free_port()  # nothing listens: the delivery stays pending
    url = f"http://127.0.0.1:{port}/hook/receiver-token-1?key=receiver-token-2"
    hook = await alice.register(url, "upload.stored")
    handle = await alice.client.upload(io.BytesIO(b"then deleted"), filename="c.txt")
    await handle.wait(timeout=60)
    await wait_until(lambda: alice.deliveries(hook["webhook_id"]), 60, message="a queued delivery")
    deleted = await alice.call("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
    assert deleted.status_code == 204
    again = await alice.call("DELETE", f"/api/v1/webhooks/{hook['webhook_id']}")
    assert again.status_code == 404
    refused = await alice.call("POST", "/api/v1/webhooks", json={"url": "gopher://x", "kinds": []})
    assert refused.status_code == 400

    conn = await asyncpg.connect(asyncpg_dsn(pipeline.settings.database_url))
    try:
        status = await conn.fetchval(
            "SELECT status FROM webhook_deliveries WHERE webhook_id = $1",
            uuid.UUID(hook["webhook_id"]),
        )
        assert status == "cancelled"

        async def audited() -> bool:
            rows = await conn.fetch(
                "SELECT action, outcome FROM audit_log WHERE actor = $1",
                alice.client.settings.client_id,
            )
            return {(r["action"], r["outcome"]) for r in rows} >= {
                ("webhook.registered", "success"),
                ("webhook.deleted", "success"),
                ("webhook.delete_refused", "failure"),
                ("webhook.register_refused", "failure"),
            }

        await wait_until(audited, 60, interval=0.3, message="the webhook audit entries")
        changes = await conn.fetch(
            "SELECT details FROM audit_log WHERE subject = $1 AND outcome = 'success'",
            hook["webhook_id"],
        )
        assert len(changes) == 2
        for change in changes:
            # Where deliveries go, not the receiver's own tokens in its path and query.
            assert "receiver-token" not in change["details"]
            details = json.loads(change["details"])
            assert details["destination"] == f"http://127.0.0.1:{port}"
            assert details["url_sha256"] == hashlib.sha256(url.encode()).hexdigest()
        sealed = await conn.fetchval(
            "SELECT secret_sealed FROM webhooks WHERE webhook_id = $1",
            uuid.UUID(hook["webhook_id"]),
        )
        assert hook["secret"].encode() not in sealed
    finally:
        await conn.close()


async def test_facts_read_again_make_no_second_delivery(
    pipeline: Pipeline, alice: Account, settings: Settings
) -> None:
    receiver = Receiver()
    async with receiving(receiver, free_port()) as url:
        hook = await alice.register(url, "upload.stored")
        handle = await alice.client.upload(io.BytesIO(b"read twice"), filename="t.txt")
        await handle.wait(timeout=60)
        await wait_until(lambda: receiver.received, 60, message="the first delivery")
        # A second dispatcher group from the beginning, with no positions: every fact is read
        # (and turned into deliveries) again.
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            read = "SELECT coalesce(sum(next_offset), 0) FROM notification_offsets"
            before = await conn.fetchval(read)
            assert before > 0
            await conn.execute("DELETE FROM notification_offsets")
            async with dispatching(settings, group_id=f"again-{uuid.uuid4().hex[:6]}"):

                async def read_again() -> bool:
                    return bool(await conn.fetchval(read) >= before)

                await wait_until(read_again, 60, message="every fact read again")
        finally:
            await conn.close()
        log = await alice.deliveries(hook["webhook_id"])
    assert len(log) == 1
    assert receiver.delivery_ids() == [log[0]["delivery_id"]]


async def set_url(settings: Settings, webhook_id: str, url: str) -> None:
    """Point a webhook at ``url`` behind the facade's back (a URL registered before a check the
    facade now makes, or written by an older version)."""
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        await conn.execute(
            "UPDATE webhooks SET url = $2 WHERE webhook_id = $1", uuid.UUID(webhook_id), url
        )
    finally:
        await conn.close()


async def test_a_delivery_that_cannot_even_be_attempted_stops_nothing(
    pipeline: Pipeline, alice: Account
) -> None:
    receiver = Receiver()
    async with receiving(receiver, free_port()) as url:
        broken = await alice.register(url, "upload.stored")
        # A name the resolver cannot encode (its label is over 63 bytes once encoded).
        await set_url(pipeline.settings, broken["webhook_id"], "http://" + "é" * 60 + ".com/")
        await alice.register(url, "upload.stored")
        first = await alice.client.upload(io.BytesIO(b"first"), filename="1.txt")
        await first.wait(timeout=60)

        async def attempted() -> bool:
            log = await alice.deliveries(broken["webhook_id"])
            return bool(log) and log[0]["attempts"] >= 1

        await wait_until(attempted, 60, message="the broken webhook's attempt logged")
        [failed] = await alice.deliveries(broken["webhook_id"])
        assert failed["status"] == "pending"
        assert failed["log"][0]["status_code"] is None
        assert failed["log"][0]["error"]
        # The sender is still there: the next upload reaches the working webhook.
        second = await alice.client.upload(io.BytesIO(b"second"), filename="2.txt")
        await second.wait(timeout=60)
        await wait_until(lambda: len(receiver.received) >= 2, 60, message="both deliveries")
    sent = [json.loads(r.body)["data"]["file"]["file_id"] for r in receiver.received]
    assert sent == [str(first.file_id), str(second.file_id)]
