"""One account's hanging receivers against everyone else's deliveries: the dispatcher keeps
slots for other accounts (its own module: a dispatcher with few slots and a long timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator

import pytest

from base.settings import Settings
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
# Four slots, at most two for one account; an attempt may wait for its answer for two minutes.
NOTIFICATIONS = notification_settings(
    concurrency=4, max_in_flight_per_account=2, request_timeout_s=120.0
)


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace, notifications=NOTIFICATIONS) as running:
        yield running


@contextlib.asynccontextmanager
async def new_account(pipeline: Pipeline, name: str) -> AsyncIterator[Account]:
    created = await pipeline.create_account(f"{name}-{uuid.uuid4().hex[:6]}")
    async with account(pipeline.facade_url, created) as a:
        yield a


async def test_an_accounts_hanging_receivers_leave_slots_for_other_accounts(
    pipeline: Pipeline,
) -> None:
    hanging, fast = Receiver(hold=asyncio.Event()), Receiver()
    assert hanging.hold is not None
    async with (
        dispatching(pipeline.settings, NOTIFICATIONS, stop_timeout_s=180),
        new_account(pipeline, "greedy") as greedy,
        new_account(pipeline, "other") as other,
        receiving(hanging, free_port()) as hanging_url,
        receiving(fast, free_port()) as fast_url,
    ):
        for _ in range(4):  # as many webhooks as the dispatcher has slots
            await greedy.register(hanging_url, "upload.stored")
        await other.register(fast_url, "upload.stored")
        stored = await greedy.client.upload(io.BytesIO(b"to hang"), filename="h.txt")
        await stored.wait(timeout=60)
        await wait_until(lambda: len(hanging.received) >= 2, 60, message="two hanging attempts")

        theirs = await other.client.upload(io.BytesIO(b"to answer"), filename="f.txt")
        await theirs.wait(timeout=60)
        # Served while the greedy account's receivers still hang on to their requests.
        await wait_until(lambda: fast.received, 60, message="the other account's delivery")
        assert not hanging.hold.is_set()
        assert len(hanging.received) == 2
        hanging.hold.set()
        await wait_until(lambda: len(hanging.received) == 4, 60, message="the rest, after")
