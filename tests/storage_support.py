"""Helpers for storage tests: commands with tokens, staged bytes, a fact collector."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

import events
from auth.testing import TestSigner
from base.settings import Settings, broker_settings
from events import (
    EventPublisher,
    FileStagedObject,
    Mode,
    Outgoing,
    ReceivedEvent,
    Topic,
    UploadRequested,
    make_broker,
    new_event,
)
from storage_workers.config import WorkerConfig
from storage_workers.service import StorageService
from tests.helpers import consumer_from_beginning, wait_until

TEST_SESSION_TIMEOUT_MS = 2000
"""Consumer-group session timeout of test workers: a killed member's partitions move (and a
restarted worker's first join completes) after about this long instead of the default 10 s."""


def worker_config(
    element_id: str, *, mode: Mode, root: Path, jwks_file: Path, **overrides: Any
) -> WorkerConfig:
    """A test element's worker: room without floors, heartbeats every second, a short session
    so group moves are quick, tokens from :class:`TestSigner`; ``overrides`` win."""
    values: dict[str, Any] = {
        "element_id": element_id,
        "mode": mode,
        "root": root,
        "jwks_file": jwks_file,
        "token_issuer": TestSigner().issuer,
        "heartbeat_interval_s": 1,
        "capacity_bytes": 10**12,
        "floor_full_bytes": 0,
        "floor_critical_bytes": 0,
        "floor_warning_bytes": 0,
        "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
    }
    return WorkerConfig(**(values | overrides))


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, config: WorkerConfig, **options: Any
) -> AsyncIterator[StorageService]:
    """A started worker, once it consumes its class's upload topic; stopped afterwards."""
    service = StorageService(settings, config, **options)
    await service.start()
    try:
        await wait_until(lambda: service.consuming_uploads, 30, message="consuming uploads")
        yield service
    finally:
        await service.stop()


WRITE_SCOPES = {"files:write", "metadata:write", "files:delete", "elements:admin"}

CLIENT_ID = "sa_test_client_00000000"
"""The client id of the producer's tokens (``TestSigner``'s default): its staging namespace."""


class FactLog:
    """Every fact on the files and elements topics since the collector started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: list[ReceivedEvent] = []
        self.dlq: list[Any] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = await consumer_from_beginning(
            self.settings, [Topic.FILES, Topic.ELEMENTS, Topic.DLQ]
        )
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        dlq = self.settings.topic_names().name(Topic.DLQ)
        async for record in self._consumer:
            if record.topic == dlq:
                self.dlq.append(record)
                continue
            self.events.append(events.decode_record(record, max_bytes=10_000_000))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    def of(self, model: type, **match: Any) -> list[Any]:
        """Payloads of type ``model`` whose attributes equal ``match``."""
        out = []
        for event in self.events:
            data = event.data
            if isinstance(data, model) and all(_get(data, k) == v for k, v in match.items()):
                out.append(data)
        return out

    async def wait(self, model: type, within: float = 30.0, **match: Any) -> Any:
        await wait_until(
            lambda: bool(self.of(model, **match)), within, message=f"{model.__name__} {match}"
        )
        return self.of(model, **match)[-1]


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("__"):
        obj = getattr(obj, part)
    return obj


class Producer:
    """Publishes commands with tokens, and stages bytes in the staging directory."""

    def __init__(self, settings: Settings, signer: TestSigner, staging: Path) -> None:
        self.settings = settings
        self.signer = signer
        self.staging = staging
        self.broker = make_broker(broker_settings(settings, client_id="test-producer"))
        self.publisher = EventPublisher(
            self.broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    def token(self, scopes: set[str] | None = None, **kwargs: Any) -> str:
        return self.signer.issue(scopes=scopes or WRITE_SCOPES, name="tester", **kwargs)

    client_id = CLIENT_ID

    def stage(self, content: bytes) -> tuple[FileStagedObject, str]:
        """Bytes staged in the producer's own namespace of the staging directory."""
        name = f"{self.client_id}/in/{uuid.uuid4().hex}"
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return FileStagedObject(path=name), hashlib.sha256(content).hexdigest()

    def upload(self, content: bytes, filename: str = "doc.txt", **fields: Any) -> UploadRequested:
        staged, checksum = self.stage(content)
        values: dict[str, Any] = {
            "file_id": uuid.uuid4(),
            "original_filename": filename,
            "file_size": len(content),
            "checksum": checksum,
            "staged": staged,
        }
        values.update(fields)
        return UploadRequested(**values)

    async def send(self, *payloads: Any, token: str | None = None) -> None:
        tok = token if token is not None else self.token()
        await self.publisher.publish_many(
            [Outgoing(new_event(p, source="test://producer"), tok or None) for p in payloads]
        )

    async def send_at(self, payload: Any, *, token: str, timestamp: datetime) -> None:
        """Publish one command whose record claims to have been written at ``timestamp``."""
        record = self.publisher.encode(new_event(payload, source="test://producer"), token)
        await self.broker.publish(
            record.value,
            record.topic,
            key=record.key,
            headers=record.headers,
            timestamp_ms=int(timestamp.timestamp() * 1000),
        )

    async def send_raw(
        self, topic: Topic, key: bytes, value: bytes, headers: dict[str, str]
    ) -> None:
        await self.broker.publish(
            value, self.settings.topic_names().name(topic), key=key, headers=headers
        )


def matching(root: Path, pattern: str) -> list[Path]:
    """Every path under ``root`` matching ``pattern`` (what a test finds in an element)."""
    return list(root.rglob(pattern))
