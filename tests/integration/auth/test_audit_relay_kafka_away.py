"""The audit relay's background loop while Kafka is away, and once it is back."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from auth import account_store
from auth.app import AuthRuntime, create_app
from auth.db import outbox
from base.settings import Settings
from events import AuditRecorded, Topic, create_topics
from tests.helpers import Received, read_events, wait_until
from tests.integration.auth.conftest import ADMIN_SECRET, ISSUER, auth_settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.kafka]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def forwarding(port: int, target: str) -> AsyncIterator[None]:
    """Listen on ``port`` and forward every connection to ``target`` (host:port): Kafka's
    bootstrap address starts answering. Clients then reach the broker at its advertised address.
    """
    host, target_port = target.rsplit(":", 1)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(client_r, broker_w), pipe(broker_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def recorded_rows(runtime: AuthRuntime) -> list[dict[str, object]]:
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    return [dict(r) for r in rows]


async def consume_audit(settings: Settings, *, expected: int) -> list[Received]:
    """Every record on this module's audit topic once ``expected`` arrived, and any right behind."""
    return await read_events(
        settings, [Topic.AUDIT], until=lambda got: len(got) >= expected, settle_ms=500
    )


async def test_audit_events_stay_pending_while_kafka_is_away_then_arrive_as_recorded(
    settings: Settings, redis_namespace: str
) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    kafka_port = free_port()  # nothing listens here until the forwarder starts
    away = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{kafka_port}"})
    policy = auth_settings(
        redis_namespace,
        outbox_poll_interval=timedelta(milliseconds=50),
        outbox_max_backoff=timedelta(seconds=5),
    )
    app = create_app(away, policy, background=True)
    async with app.router.lifespan_context(app):
        runtime: AuthRuntime = app.state.runtime
        relay = runtime.relay
        async with runtime.engine.connect() as conn:
            admin = await account_store.by_name(conn, "admin")
        assert admin is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:

            async def issue() -> None:
                response = await http.post(
                    "/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(admin.client_id, ADMIN_SECRET),
                )
                assert response.status_code == 200, response.text

            # The background loop tries, fails, and backs off; the service is unaffected.
            await wait_until(lambda: relay.failures >= 2, message="relay retried")
            failures_before_burst = relay.failures
            for _ in range(20):
                await issue()
            # Each token committed an audit row and notified the relay; a backing-off relay
            # does not turn those notifications into connection attempts.
            assert relay.failures - failures_before_burst < 10
            assert 0 < relay.retry_delay <= policy.outbox_max_backoff.total_seconds()

            recorded = await recorded_rows(runtime)
            issued = [r for r in recorded if b"token.issued" in bytes(r["value"])]  # type: ignore[arg-type]
            assert len(issued) == 20
            assert all(r["published_at"] is None for r in recorded)
            assert await relay.pending() == len(recorded)
            assert relay.published == 0

            # Kafka answers again: the same loop, without a restart, publishes the backlog.
            async with forwarding(kafka_port, settings.kafka_bootstrap):
                # The rows are marked published before the loop clears its backoff: wait for both.
                async def drained() -> bool:
                    return await relay.pending() == 0 and relay.retry_delay == 0

                await wait_until(drained, timeout=30, message="outbox drained, backoff cleared")
            assert all(r["published_at"] is not None for r in await recorded_rows(runtime))

    received = await consume_audit(settings, expected=len(recorded))
    by_id = {event.envelope.id: (record, event) for record, event in received}
    assert len(by_id) == len(recorded)
    for row in recorded:
        headers = {k: base64.b64decode(v) for k, v in row["headers"]}  # type: ignore[attr-defined]
        matches = [
            record
            for record, _ in received
            if record.value == row["value"] and record.key == row["key"]
        ]
        assert len(matches) == 1, f"outbox row {row['id']} arrived {len(matches)} times"
        assert dict(matches[0].headers) == headers  # the client may reorder headers
    assert all(isinstance(event.data, AuditRecorded) for _, event in received)
    assert sum(event.data.action == "token.issued" for _, event in received) == 20
