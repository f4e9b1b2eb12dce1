"""An account's life, as its webhooks follow it, on the real pipeline: suspended by an admin, its
deliveries are held (another account's, queued after them, go out meanwhile); activated, they
go out; deleted, its webhooks are deleted and what was pending is cancelled, audited."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from base.settings import Settings
from consumers.sql import asyncpg_dsn
from tests.helpers import wait_until
from tests.integration.notifications.support import (
    Account,
    Receiver,
    account,
    dispatching,
    notification_settings,
    receiving,
)
from tests.pipeline import Pipeline, free_port, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]
#: Retried every second for long enough that a delivery stays pending through the test.
NOTIFICATIONS = notification_settings(retry_delays_s=[1.0] * 120)


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with (
        running_pipeline(settings, redis_namespace, notifications=NOTIFICATIONS) as running,
        dispatching(settings, NOTIFICATIONS),
    ):
        yield running


@pytest.fixture
async def db(pipeline: Pipeline) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(pipeline.settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def upload(who: Account, content: bytes) -> None:
    await (await who.client.upload(io.BytesIO(content), filename="n.txt")).wait(timeout=60)


async def pending_after_a_failed_attempt(db: asyncpg.Connection, webhook_id: str) -> bool:
    row = await db.fetchrow(
        "SELECT status, attempts FROM webhook_deliveries WHERE webhook_id = $1 "
        "ORDER BY created_at DESC LIMIT 1",
        uuid.UUID(webhook_id),
    )
    return row is not None and row["status"] == "pending" and row["attempts"] >= 1


async def change_account(pipeline: Pipeline, method: str, path: str) -> None:
    """An admin's change of an account, recorded by the auth service and relayed at once."""
    await pipeline.administer(method, path)
    assert await pipeline.relay_auth_audit() >= 1


async def webhook_deleted(db: asyncpg.Connection, webhook_id: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT deleted_at IS NOT NULL FROM webhooks WHERE webhook_id = $1",
            uuid.UUID(webhook_id),
        )
    )


def heard_by(receiver: Receiver, webhook_id: str) -> list[dict[str, object]]:
    bodies = [json.loads(r.body) for r in receiver.received]
    return [b for b in bodies if b["webhook_id"] == webhook_id]


async def test_suspension_holds_deliveries_activation_sends_them_deletion_cancels_them(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    alice_settings = await pipeline.create_account(f"alice-{uuid.uuid4().hex[:6]}")
    bob_settings = await pipeline.create_account(f"bob-{uuid.uuid4().hex[:6]}")
    alice_id = await pipeline.account_id(alice_settings.client_id)
    port = free_port()  # nothing listens yet: alice's delivery stays pending
    async with (
        account(pipeline.facade_url, alice_settings) as alice,
        account(pipeline.facade_url, bob_settings) as bob,
    ):
        alices = (await alice.register(f"http://127.0.0.1:{port}/hook", "upload.stored"))[
            "webhook_id"
        ]
        bobs = (await bob.register(f"http://127.0.0.1:{port}/hook", "upload.stored"))["webhook_id"]
        await upload(alice, b"told to alice once she is back")

        async def alices_pending() -> bool:
            return await pending_after_a_failed_attempt(db, alices)

        await wait_until(alices_pending, 60, message="alice's delivery pending")

        await change_account(pipeline, "POST", f"/{alice_id}/suspend")

        async def alice_held() -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM notification_held_accounts WHERE client_id = $1",
                    alice_settings.client_id,
                )
            )

        await wait_until(alice_held, 60, interval=0.2, message="alice's deliveries held")

        receiver = Receiver()
        async with receiving(receiver, port):

            async def bob_heard_after_alice_was_due() -> bool:
                # A delivery queued after alice's was due, then delivered: the sender took it
                # while alice's, due earlier, stayed where it was. Another of bob's uploads
                # until that is so.
                heard_later = await db.fetchval(
                    "SELECT count(*) FROM webhook_deliveries b, webhook_deliveries a "
                    "WHERE b.webhook_id = $1 AND a.webhook_id = $2 AND b.status = 'delivered' "
                    "AND a.status = 'pending' AND b.created_at > a.next_attempt_at",
                    uuid.UUID(bobs),
                    uuid.UUID(alices),
                )
                if not heard_later:
                    await upload(bob, b"bob is not suspended")
                return bool(heard_later)

            await wait_until(bob_heard_after_alice_was_due, 120, interval=0.5, message="bob")
            assert heard_by(receiver, bobs)
            assert not heard_by(receiver, alices), "nothing goes out while she is suspended"

            await change_account(pipeline, "POST", f"/{alice_id}/activate")
            await wait_until(
                lambda: heard_by(receiver, alices), 60, message="alice's delivery once activated"
            )

        await upload(alice, b"pending when she is deleted")
        await wait_until(alices_pending, 60, message="alice's second delivery pending")
        await change_account(pipeline, "DELETE", f"/{alice_id}")

        await wait_until(
            lambda: webhook_deleted(db, alices), 60, interval=0.2, message="webhook deleted"
        )
        statuses = {
            r["status"]
            for r in await db.fetch(
                "SELECT status FROM webhook_deliveries WHERE webhook_id = $1", uuid.UUID(alices)
            )
        }
        assert statuses == {"delivered", "cancelled"}
        still = await db.fetchval(
            "SELECT deleted_at IS NULL FROM webhooks WHERE webhook_id = $1", uuid.UUID(bobs)
        )
        assert still, "another account's webhook stays"

        async def deletion_audited() -> list[asyncpg.Record]:
            return list(
                await db.fetch(
                    "SELECT actor, details FROM audit_log WHERE action = 'webhook.deleted' "
                    "AND subject = $1",
                    alices,
                )
            )

        await wait_until(deletion_audited, 60, interval=0.3, message="the deletion audited")
        [entry] = await deletion_audited()
        details = json.loads(entry["details"])
        assert details["reason"] == "account_deleted"
        assert details["pending_cancelled"] == 1
        assert details["destination"] == f"http://127.0.0.1:{port}"
        assert entry["actor"] == pipeline.admin_client_id


async def test_a_deleted_account_registers_no_webhook_with_a_token_it_still_holds(
    pipeline: Pipeline, db: asyncpg.Connection
) -> None:
    """Its token was issued before the deletion and stays good until it expires: a webhook it
    registers with it after its webhooks were deleted is refused, and nothing is queued for
    it."""
    carol_settings = await pipeline.create_account(f"carol-{uuid.uuid4().hex[:6]}")
    carol_id = await pipeline.account_id(carol_settings.client_id)
    port = free_port()
    async with account(pipeline.facade_url, carol_settings) as carol:
        first = (await carol.register(f"http://127.0.0.1:{port}/hook", "upload.stored"))[
            "webhook_id"
        ]
        await change_account(pipeline, "DELETE", f"/{carol_id}")

        await wait_until(
            lambda: webhook_deleted(db, first), 60, interval=0.2, message="carol's webhook deleted"
        )
        answer = await carol.call(
            "POST",
            "/api/v1/webhooks",
            json={"url": f"http://127.0.0.1:{port}/again", "kinds": ["upload.stored"]},
        )
        assert answer.status_code == 403, answer.text
        assert answer.json()["reason"] == "account_deleted"
        live = await db.fetchval(
            "SELECT count(*) FROM webhooks WHERE client_id = $1 AND deleted_at IS NULL",
            carol_settings.client_id,
        )
        assert live == 0, "no webhook of a deleted account"
