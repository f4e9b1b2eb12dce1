"""What the webhook tests share: a real HTTP receiver, settings, and the account's calls."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from base.settings import Settings, broker_settings
from events import EventPublisher, UploadRequested, make_broker, new_event, staged_key
from notifications import NotificationSettings
from notifications.sealing import new_key_setting
from notifications.service import run_dispatcher
from producers import ArtStoreClient, ClientSettings
from tests.pipeline import served

KEY = new_key_setting("k1")


def notification_settings(**overrides: Any) -> NotificationSettings:
    """Short retries and timeouts; 127.0.0.1 allowed (the receiver runs on this machine)."""
    values: dict[str, Any] = {
        "secret_keys": [KEY],
        "allowed_networks": ["127.0.0.1/32"],
        "retry_delays_s": [1.0, 2.0, 4.0],
        "request_timeout_s": 3.0,
        "sender_poll_s": 0.2,
        "poll_timeout_ms": 100,
        "session_timeout_ms": 6000,
    }
    values.update(overrides)
    return NotificationSettings(**values)


@contextlib.asynccontextmanager
async def dispatching(
    settings: Settings, notifications: NotificationSettings, stop_timeout_s: float = 60
) -> AsyncIterator[None]:
    """The webhook dispatcher running in this process until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_dispatcher(settings, notifications, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_timeout_s)


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server that records every POST to ``/hook``; ``hold`` makes it wait before
    answering (a slow receiver) until released; ``status`` is what it answers."""

    status: int = 200
    received: list[Received] = field(default_factory=list)
    hold: asyncio.Event | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            self.received.append(Received({k.lower(): v for k, v in request.headers.items()}, body))
            self.arrived.set()
            if self.hold is not None:
                await self.hold.wait()
            return Response(status_code=self.status)

        return app

    def delivery_ids(self) -> list[str]:
        return [r.headers["x-artstore-delivery"] for r in self.received]


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver, port: int) -> AsyncIterator[str]:
    """``receiver`` on 127.0.0.1:port; its webhook URL."""
    async with served(receiver.app(), port) as url:
        yield f"{url}/hook"


@dataclass
class Account:
    """An account's HTTP calls on the facade's webhook routes."""

    facade_url: str
    client: ArtStoreClient

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = await self.client.token()
        async with httpx.AsyncClient(base_url=self.facade_url, timeout=30) as http:
            return await http.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )

    async def register(self, url: str, *kinds: str) -> dict[str, Any]:
        answer = await self.call("POST", "/api/v1/webhooks", json={"url": url, "kinds": kinds})
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def deliveries(self, webhook_id: str) -> list[dict[str, Any]]:
        answer = await self.call("GET", f"/api/v1/webhooks/{webhook_id}/deliveries")
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


@contextlib.asynccontextmanager
async def account(facade_url: str, settings: ClientSettings) -> AsyncIterator[Account]:
    async with ArtStoreClient(settings) as client:
        yield Account(facade_url, client)


async def upload_with_wrong_checksum(settings: Settings, client: ArtStoreClient) -> uuid.UUID:
    """Stage real bytes in the caller's namespace and publish an upload declaring another
    checksum: the element rejects it (checksum_mismatch) for this verified caller."""
    file_id = uuid.uuid4()
    key = staged_key(client.namespace, file_id, datetime.now(UTC))
    staged = await client.staging.stage(key, io.BytesIO(b"bytes that do not match"), None)
    command = UploadRequested(
        file_id=file_id,
        original_filename="mismatch.txt",
        file_size=staged.size,
        checksum="0" * 64,
        staged=staged.staged,
    )
    broker = make_broker(broker_settings(settings, client_id="webhook-test"))
    await broker.start()
    try:
        publisher = EventPublisher(
            broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )
        await publisher.publish(
            new_event(command, source="webhook-test"), token=await client.token()
        )
    finally:
        await broker.stop()
    return file_id
