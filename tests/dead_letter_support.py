"""Poison records for the dead-letter tests: a real element whose storage refuses writes, its
worker's uploads dead-lettered once the retries run out, and the topics read back as they are.

The element's backend is real (a local directory); :class:`Outage` makes every write fail while
``away`` is set, the way a disk gone read-only would: the directory is still there and answers
the worker's probe, so the failure is the records' own (an unreachable storage would hold them
instead, docs/operations.md#outages).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from base.settings import Settings
from events import AuditRecorded, Mode, Topic, decode_record
from events.admin import topic_partitions
from events.dead_letters import REDRIVEN_FROM
from storage_workers.backends import BackendError, LocalStorage, WrittenObject
from storage_workers.service import StorageService
from tests.storage_support import running_worker, worker_config


class Outage(LocalStorage):
    """A real local element whose writes fail while ``away`` is set; reads go through."""

    away = True

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        if self.away:
            raise BackendError("the element's storage refused the write")
        return super().write_pending(key, chunks, durable=durable)


@contextlib.asynccontextmanager
async def outage_worker(
    settings: Settings, element_id: str, jwks_file: Path
) -> AsyncIterator[tuple[StorageService, Outage]]:
    """An edit element on :class:`Outage` storage (up while it registers, then away), whose
    worker gives an upload up after two quick attempts."""
    root = settings.data_dir / element_id
    root.mkdir(parents=True, exist_ok=True)
    outage = Outage(root)
    outage.away = False
    config = worker_config(
        element_id,
        mode=Mode.EDIT,
        root=root,
        jwks_file=jwks_file,
        retry_attempts=2,
        retry_backoff_s=0.05,
    )
    async with running_worker(settings, config, backend=outage) as service:
        outage.away = True
        yield service, outage


async def whole_topic(settings: Settings, topic: Topic) -> list[Any]:
    """Every record of ``topic`` from its start to the end offsets the broker reports now."""
    name = settings.topic_names().name(topic)
    partitions = await topic_partitions(settings.kafka_bootstrap, [name])
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records.extend(r for r in batch if r.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


def redriven(record: Any) -> bool:
    """Whether ``record`` was sent back from the dead-letter topic."""
    return any(name == REDRIVEN_FROM for name, _ in record.headers or ())


async def audit_events(settings: Settings, action: str) -> list[tuple[str, AuditRecorded]]:
    """The audit events of ``action`` now on the audit topic, with their envelope's source."""
    found = []
    for record in await whole_topic(settings, Topic.AUDIT):
        event = decode_record(record, max_bytes=settings.max_message_bytes)
        data = event.envelope.data
        if isinstance(data, AuditRecorded) and data.action == action:
            found.append((event.envelope.source, data))
    return found


def stored_once(root: Path, file_id: object) -> bool:
    """Whether ``root`` holds exactly one content file for ``file_id`` (beside its sidecar)."""
    named = root.rglob(f"*{file_id}*")
    return len([p for p in named if not p.name.endswith(".attr.json")]) == 1
