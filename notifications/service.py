"""Wiring of the dispatcher process: the consumer, the sender, the audit relay, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from base.health import HealthServer
from base.settings import Settings
from consumers import create_pool
from events import Topic
from notifications import metrics
from notifications.dispatcher import NOTIFYING_TOPICS, Dispatcher, SeekToStoredPositions
from notifications.migrate import migrate
from notifications.queue import DeliveryQueue
from notifications.sealing import SealingUnavailable, SecretBox
from notifications.sender import Sender
from notifications.settings import NotificationSettings
from notifications.targets import AddressPolicy

log = logging.getLogger(__name__)


class DispatcherReadiness:
    """Why the dispatcher is not ready, or None."""

    def __init__(self) -> None:
        self.started = False

    def __call__(self) -> str | None:
        return None if self.started else "starting: migrating and joining the consumer group"


def secret_box(notifications: NotificationSettings) -> SecretBox:
    """The configured keys; :class:`SealingUnavailable` when there are none or one is bad."""
    box = SecretBox.from_setting(notifications.secret_keys)
    if not box.ready:
        raise SealingUnavailable(
            "webhooks are not configured: set ARTSTORE_NOTIFICATIONS_SECRET_KEYS (see "
            "docs/lifecycle.md, 'Signed notifications')"
        )
    return box


async def relay_audit(
    queue: DeliveryQueue, producer: AIOKafkaProducer, topic: str, *, batch: int = 500
) -> int:
    """Publish the pending audit events of registrations, oldest first; how many went out.

    Each is marked published only once the broker acknowledged it: a crash in between sends it
    again, and the projection keeps one audit entry per event id."""
    rows = await queue.audit_batch(batch)
    if not rows:
        return 0
    sends = [
        await producer.send(
            topic,
            value=r["value"],
            key=r["key"],
            headers=[(k, v.encode()) for k, v in dict(r["headers"]).items()],
        )
        for r in rows
    ]
    await asyncio.gather(*sends)
    await queue.audit_published([r["id"] for r in rows])
    return len(rows)


async def _every(
    interval_s: float, stop: asyncio.Event, work: Callable[[], Awaitable[object]], what: str
) -> None:
    while not stop.is_set():
        try:
            await work()
        except Exception as exc:  # retried at the next tick; the outbox keeps what is pending
            log.warning(f"{what} failed; retried", extra={"error": str(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def _stop_on_crash(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A part that died stops the whole process, so its supervisor starts it afresh (a
    dispatcher that reads facts but no longer sends would look healthy and deliver nothing)."""
    if task.cancelled() or task.exception() is None:
        return
    log.error(
        "a part of the dispatcher failed; stopping",
        extra={"task": task.get_name(), "error": repr(task.exception())},
    )
    stop.set()


async def run_dispatcher(
    settings: Settings,
    notifications: NotificationSettings,
    stop: asyncio.Event,
    *,
    readiness: DispatcherReadiness | None = None,
) -> None:
    """Consume facts, queue and send deliveries, relay audit events until ``stop`` is set."""
    box = secret_box(notifications)
    policy = AddressPolicy.of(notifications.allowed_networks, notifications.denied_networks)
    names = settings.topic_names()
    await migrate(settings.database_url)
    pool = await create_pool(
        settings.database_url, application_name="artstore-notifications", size=4
    )
    queue = DeliveryQueue(pool)
    wake = asyncio.Event()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=notifications.group_id,
        client_id="artstore-notifications",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=notifications.batch_size,
        session_timeout_ms=notifications.session_timeout_ms,
        heartbeat_interval_ms=max(notifications.session_timeout_ms // 4, 300),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="artstore-notifications-audit",
        acks="all",
        linger_ms=5,
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(notifications.request_timeout_s),
        limits=httpx.Limits(max_connections=notifications.concurrency),
        follow_redirects=False,
        trust_env=False,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        await producer.start()
        consumer.subscribe(
            [names.name(t) for t in NOTIFYING_TOPICS],
            listener=SeekToStoredPositions(consumer, queue),
        )
        await consumer.start()
        dispatcher = Dispatcher(
            consumer,
            queue,
            names,
            wake,
            max_message_bytes=settings.max_message_bytes,
            batch_size=notifications.batch_size,
            poll_timeout_ms=notifications.poll_timeout_ms,
        )
        sender = Sender(
            queue,
            box,
            policy,
            http,
            wake,
            delays_s=notifications.retry_delays_s,
            timeout_s=notifications.request_timeout_s,
            concurrency=notifications.concurrency,
            per_account=notifications.max_in_flight_per_account,
            poll_s=notifications.sender_poll_s,
        )
        audit_topic = names.name(Topic.AUDIT)

        async def pending() -> None:
            metrics.PENDING.set(await queue.pending_count())

        tasks = [
            asyncio.create_task(sender.run(stop), name="webhook-sender"),
            asyncio.create_task(
                _every(1.0, stop, lambda: relay_audit(queue, producer, audit_topic), "audit relay"),
                name="webhook-audit-relay",
            ),
            asyncio.create_task(_every(5.0, stop, pending, "pending count"), name="pending"),
        ]
        for task in tasks:
            task.add_done_callback(lambda done: _stop_on_crash(done, stop))
        if readiness is not None:
            readiness.started = True
        log.info("notifications dispatcher started", extra={"group": notifications.group_id})
        await dispatcher.run(stop)
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(Exception):
                await task
        await consumer.stop()
        await producer.stop()
        await http.aclose()
        await pool.close()
    failed = [t for t in tasks if not t.cancelled() and t.exception() is not None]
    if failed:
        raise RuntimeError(f"{failed[0].get_name()} failed: {failed[0].exception()!r}")


def run_dispatcher_process(settings: Settings, notifications: NotificationSettings) -> None:
    """Run the dispatcher until SIGINT or SIGTERM (``artstore notifications run``); with a
    metrics port, serve ``/health/live``, ``/health/ready`` and ``/metrics`` on it."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        readiness = DispatcherReadiness()
        health = HealthServer(REGISTRY, readiness)
        if notifications.metrics_port is not None:
            await health.start(notifications.metrics_host, notifications.metrics_port)
        try:
            await run_dispatcher(settings, notifications, stop, readiness=readiness)
        finally:
            await health.stop()

    asyncio.run(main())
