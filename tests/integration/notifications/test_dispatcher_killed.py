"""The dispatcher killed (SIGKILL) while deliveries are in flight, then started again: every
event is still one delivery per webhook, each sent again under the same delivery id."""

from __future__ import annotations

import asyncio
import io
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from artstore.stack import StackEnv
from base.settings import Settings
from tests.e2e.service_process import ServiceLauncher
from tests.helpers import wait_until
from tests.integration.notifications.support import (
    KEY,
    Receiver,
    account,
    notification_settings,
    receiving,
)
from tests.pipeline import Pipeline, free_port, running_pipeline, service_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]
UPLOADS = 6


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        settings, redis_namespace, notifications=notification_settings()
    ) as running:
        yield running


async def test_a_dispatcher_killed_mid_send_delivers_each_event_once_per_webhook(
    pipeline: Pipeline, settings: Settings, stack: StackEnv, tmp_path: Path
) -> None:
    created = await pipeline.create_account(f"carol-{uuid.uuid4().hex[:6]}")
    receiver = Receiver()
    async with (
        account(pipeline.facade_url, created) as carol,
        receiving(receiver, free_port()) as url,
    ):
        hook = await carol.register(url, "upload.stored")
        handles = [
            await carol.client.upload(io.BytesIO(f"file {i}".encode()), filename=f"k{i}.txt")
            for i in range(UPLOADS)
        ]
        for handle in handles:
            await handle.wait(timeout=60)

        held = asyncio.Event()
        receiver.hold = held  # every request waits: the dispatcher is mid-send
        port = free_port()
        env = service_env(
            stack,
            settings,
            ARTSTORE_NOTIFICATIONS_SECRET_KEYS=KEY,
            ARTSTORE_NOTIFICATIONS_ALLOWED_NETWORKS="127.0.0.1/32",
            ARTSTORE_NOTIFICATIONS_RETRY_DELAYS_S="1,2,4",
            ARTSTORE_NOTIFICATIONS_REQUEST_TIMEOUT_S="3",
            ARTSTORE_NOTIFICATIONS_SENDER_POLL_S="0.2",
            ARTSTORE_NOTIFICATIONS_SESSION_TIMEOUT_MS="6000",
            ARTSTORE_NOTIFICATIONS_METRICS_PORT=str(port),
        )
        async with ServiceLauncher(
            "notifications", ["notifications", "run"], f"http://127.0.0.1:{port}", tmp_path
        ) as launcher:
            first = await launcher.start(env)
            await first.wait_ready()
            await wait_until(
                lambda: len(receiver.received) >= 1, 60, message="a delivery in flight"
            )
            first.process.send_signal(signal.SIGKILL)
            await first.process.wait()
            in_flight = set(receiver.delivery_ids())
            receiver.hold = None
            held.set()

            second = await launcher.start(env)
            await second.wait_ready()

            async def all_delivered() -> bool:
                log = await carol.deliveries(hook["webhook_id"])
                return len(log) >= UPLOADS and all(d["status"] == "delivered" for d in log)

            await wait_until(all_delivered, 90, interval=0.3, message="every delivery made")
            await second.terminate()

    log = await carol.deliveries(hook["webhook_id"])
    assert len(log) == UPLOADS  # one delivery per event for the webhook
    stored = {str(h.file_id) for h in handles}
    assert {d["subject"] for d in log} == stored
    received = Counter(receiver.delivery_ids())
    assert set(received) == {d["delivery_id"] for d in log}
    # A delivery sent twice is one the killed process had in flight, sent again under its id.
    assert {i for i, n in received.items() if n > 1} <= in_flight
    assert all(n <= 2 for n in received.values())
