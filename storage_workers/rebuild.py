"""Rebuild from storage: scan an element's sidecars and re-announce every file (SPEC §6)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from base.operations_audit import operator
from base.settings import Settings, broker_settings
from events import (
    AuditRecorded,
    Envelope,
    EventPublisher,
    FileDeleted,
    FileStored,
    LocalBackend,
    Outgoing,
    audit_event,
    make_broker,
    new_event,
)
from storage_workers.backends import StorageBackend, is_temporary, open_backend
from storage_workers.catalogue import scan_sidecars
from storage_workers.config import WorkerConfig
from storage_workers.element import ELEMENT_FILE, TOMBSTONES_DIR
from storage_workers.naming import is_sidecar, sidecar_path
from storage_workers.sidecar import SidecarError

BATCH = 500


class ElementNotFound(Exception):
    """There is no element where the rebuild was told to look."""


@dataclass
class RebuildReport:
    """What a rebuild announced and what it found wrong."""

    announced: int = 0
    deleted: int = 0
    cold: int = 0
    """Files whose content is on the element's cold tier (their sidecars say so)."""
    unreadable: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    """Data files without a sidecar (should not exist after recovery)."""


def collect(backend: StorageBackend, element_id: str) -> tuple[list[Outgoing], RebuildReport]:
    """FileStored for every sidecar, FileDeleted for every tombstone, and a report."""
    report = RebuildReport()
    source = f"artstore://storage/{element_id}/rebuild"
    facts: list[Outgoing] = []
    for key, result in scan_sidecars(backend, element_id):
        if isinstance(result, SidecarError):
            report.unreadable.append(key)
            continue
        facts.append(Outgoing(new_event(FileStored(file=result.to_record()), source=source)))
        report.announced += 1
        report.cold += result.cold_copy is not None
    for info in backend.list(TOMBSTONES_DIR.rstrip("/")):
        deleted = FileDeleted.model_validate_json(backend.read_bytes(info.key))
        facts.append(Outgoing(new_event(deleted, source=source)))
        report.deleted += 1
    for info in backend.list():
        key = info.key
        if key.startswith(".artstore/") or is_sidecar(key) or is_temporary(key):
            continue
        if backend.stat(sidecar_path(key)) is None:
            report.orphans.append(key)
    return facts, report


def open_existing(settings: Settings, config: WorkerConfig) -> StorageBackend:
    """The element's storage; raises :class:`ElementNotFound` unless an element is there."""
    location = config.element_backend(
        data_dir=settings.data_dir,
        s3_endpoint=settings.s3_endpoint,
        s3_bucket=settings.s3_bucket,
        s3_secure=settings.s3_secure,
        s3_region=settings.s3_region,
    )
    if isinstance(location, LocalBackend):
        if not (Path(location.root) / ELEMENT_FILE).is_file():
            raise _not_found(config.element_id, location.root)
        return open_backend(location)
    backend = open_backend(
        location, s3_access_key=settings.s3_access_key, s3_secret_key=settings.s3_secret_key
    )
    if backend.stat(ELEMENT_FILE) is None:
        raise _not_found(config.element_id, f"s3://{location.bucket}/{location.prefix}")
    return backend


def _not_found(element_id: str, where: str) -> ElementNotFound:
    return ElementNotFound(
        f"no element {element_id} at {where} (no {ELEMENT_FILE} there): pass --root DIR for "
        "a local element or --s3-prefix PREFIX for one in S3"
    )


async def rebuild_element(settings: Settings, config: WorkerConfig) -> RebuildReport:
    """Scan the element and publish its facts in pipelined batches."""
    backend = await asyncio.to_thread(open_existing, settings, config)
    facts, report = await asyncio.to_thread(collect, backend, config.element_id)
    broker = make_broker(broker_settings(settings, client_id=f"rebuild-{config.element_id}"))
    await broker.start()
    try:
        publisher = EventPublisher(
            broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )
        for start in range(0, len(facts), BATCH):
            await publisher.publish_many(facts[start : start + BATCH])
        await publisher.publish_many([Outgoing(_audit_of(config.element_id, report))])
    finally:
        await broker.stop()
    return report


def _audit_of(element_id: str, report: RebuildReport) -> Envelope[AuditRecorded]:
    """The rebuild's audit event, published after the facts it announced."""
    flawed = bool(report.unreadable or report.orphans)
    return audit_event(
        "element.rebuilt",
        subject=element_id,
        source=f"artstore://storage/{element_id}/rebuild",
        actor=operator(),
        outcome="failure" if flawed else "success",
        reason="unreadable sidecars or orphan data files found" if flawed else None,
        details={
            "announced": report.announced,
            "deleted": report.deleted,
            "unreadable": len(report.unreadable),
            "orphans": len(report.orphans),
        },
    )
