"""The delivery queue in PostgreSQL, against a real database: what a deletion racing the
dispatcher leaves behind."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from base.settings import Settings
from consumers import create_pool
from notifications.migrate import migrate
from notifications.queue import DeliveryQueue, NewDelivery
from notifications.registrations import Registrations
from notifications.routing import NotificationKind
from notifications.sealing import SecretBox, new_key_setting
from notifications.targets import parse_target

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture(scope="module")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    await migrate(settings.database_url)
    created = await create_pool(settings.database_url, application_name="queue-test")
    yield created
    await created.close()


async def test_a_webhook_deleted_after_its_subscribers_were_read_gets_no_delivery(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    registrations = Registrations(
        pool,
        SecretBox.from_setting([new_key_setting()]),
        settings.topic_names(),
        max_message_bytes=settings.max_message_bytes,
    )
    queue = DeliveryQueue(pool)
    account = f"acct-{uuid.uuid4().hex[:6]}"
    registered = await registrations.register(
        account,
        parse_target("https://hooks.example.com/h"),
        [NotificationKind.UPLOAD_STORED],
        "",
        limit=5,
    )
    webhook_id = uuid.UUID(registered.webhook["webhook_id"])
    # The dispatcher read the account's webhooks for a batch ...
    [subscriber] = await queue.subscribers([account])
    assert subscriber.webhook_id == webhook_id
    # ... the account deleted the webhook (cancelling what was pending) ...
    assert await registrations.delete(account, webhook_id)
    # ... and then the batch's deliveries were queued.
    delivery = NewDelivery(uuid.uuid4(), webhook_id, "upload.stored", "e", "t", "s", b"{}")
    partition = (f"files-{uuid.uuid4().hex[:6]}", 0)
    inserted = await queue.enqueue({partition: 0}, {partition: 1}, [delivery])
    assert inserted == set()
    queued = await pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1", webhook_id
    )
    assert queued == 0
    assert await queue.stored_positions([partition]) == {partition: 1}
