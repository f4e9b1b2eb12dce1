"""Fixity on demand and the fixity report, for operators (``artstore fixity run|report``).

An on-demand run reads the element through its backend as its worker's auditor does (the
backend as the element announced it, the files as its sidecars and the index know them), and
announces what it finds. It writes nothing into the element, so it may run beside the
element's worker, which stays the element's only writer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, TypeAdapter

from base.settings import Settings, broker_settings
from consumers.store_sql import create_pool
from events import (
    ElementBackend,
    EventPublisher,
    FixityChecked,
    FixityFindingKind,
    Mode,
    Outgoing,
    make_broker,
    new_event,
)
from storage_workers import open_backend
from storage_workers.catalogue import Catalogue, CatalogueEntry
from storage_workers.fixity import (
    Announcer,
    AuditItem,
    Auditor,
    FixityState,
    KnownFile,
    PassRunner,
    ReadBudget,
    plan_items,
)


class UnknownElementOrFile(LookupError):
    """The index does not know the element (or the file on it)."""


async def run_fixity(
    settings: Settings,
    element_id: str,
    *,
    file_id: UUID | None = None,
    bytes_per_s: float | None = None,
) -> FixityChecked:
    """Check the element (or one file of it) now and announce the findings and the pass."""
    pool = await create_pool(settings.database_url, application_name="artstore-fixity")
    try:
        element = await pool.fetchrow(
            "SELECT backend, mode FROM elements WHERE element_id = $1", element_id
        )
        if element is None or element["backend"] is None:
            raise UnknownElementOrFile(f"the index knows no element {element_id}")
        rows = await pool.fetch(
            "SELECT file_id, storage_path, file_size, checksum, retention_policy, "
            "ttl_expires_at, fixity FROM files WHERE element_id = $1 AND deleted_at IS NULL",
            element_id,
        )
    finally:
        await pool.close()
    backend = open_backend(
        TypeAdapter(ElementBackend).validate_python(element["backend"]),
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    catalogue = await asyncio.to_thread(Catalogue.load, backend, element_id)
    for row in rows:  # a file the index knows whose sidecar is gone is still the element's
        if catalogue.get(row["file_id"]) is None:
            catalogue.add(
                CatalogueEntry(
                    row["file_id"],
                    row["storage_path"],
                    row["file_size"],
                    row["checksum"],
                    row["retention_policy"],
                    row["ttl_expires_at"],
                )
            )
    items: Sequence[AuditItem]
    if file_id is not None:
        entry = catalogue.get(file_id)
        if entry is None:
            raise UnknownElementOrFile(f"element {element_id} holds no file {file_id}")
        items = [KnownFile(entry)]
    else:
        items = await asyncio.to_thread(
            lambda: plan_items(backend.list_keys(), catalogue.entries())
        )
    state = FixityState(
        failed={
            r["storage_path"]: FixityFindingKind(r["fixity"].get("kind") or "checksum_mismatch")
            for r in rows
            if r["fixity"] and r["fixity"].get("status") == "failed"
        }
    )
    agent = f"artstore fixity run on {socket.gethostname()}"
    broker = make_broker(broker_settings(settings, client_id=f"fixity-{element_id}"))
    await broker.start()
    publisher = EventPublisher(
        broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
    )
    source = f"artstore://fixity/{element_id}"

    async def publish(payloads: Sequence[BaseModel]) -> None:
        await publisher.publish_many([Outgoing(new_event(p, source=source)) for p in payloads])

    auditor = Auditor(
        backend,
        element_id,
        catalogue.get,
        budget=ReadBudget(bytes_per_s),
        content_online=element["mode"] != Mode.AR.value,
    )
    runner = PassRunner(
        auditor, Announcer(element_id, agent), publish, clock=lambda: datetime.now(UTC)
    )
    try:
        return await runner.run(items, state, file_scope=file_id)
    finally:
        runner.close()
        await broker.stop()


@dataclass
class FixityReport:
    """Passes finished in a window, their totals, and the findings they announced."""

    passes: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    open_failures: list[dict[str, Any]] = field(default_factory=list)
    """Files whose last check failed, whenever it was."""

    @property
    def totals(self) -> dict[str, int]:
        """checked = sound + failed + unreadable, by construction."""
        sums = {
            k: sum(int(p[k]) for p in self.passes)
            for k in ("sound", "failed", "unreadable", "bytes_checked")
        }
        sums["checked"] = sums["sound"] + sums["failed"] + sums["unreadable"]
        return sums

    @property
    def findings_not_indexed(self) -> int:
        """Failed items the passes counted whose findings are not in the index (yet)."""
        announced = {(f["pass_id"], f["storage_path"]) for f in self.findings}
        return max(0, self.totals["failed"] - len(announced))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "totals": self.totals,
            "findings_not_indexed": self.findings_not_indexed,
            "passes": self.passes,
            "findings": self.findings,
            "open_failures": self.open_failures,
        }


async def fixity_report(
    settings: Settings, *, element_id: str | None = None, since: datetime | None = None
) -> FixityReport:
    """The fixity log of the index (one element or all, passes finished since ``since``)."""
    pool = await create_pool(settings.database_url, application_name="artstore-fixity-report")
    try:
        passes = await pool.fetch(
            "SELECT pass_id, element_id, scope, file_id, complete, started_at, finished_at, "
            "checked, sound, failed, unreadable, bytes_checked, findings FROM fixity_passes "
            "WHERE ($1::text IS NULL OR element_id = $1) "
            "AND ($2::timestamptz IS NULL OR finished_at >= $2) ORDER BY finished_at, pass_id",
            element_id,
            since,
        )
        findings = await pool.fetch(
            "SELECT pass_id, element_id, file_id, storage_path, kind, detected_at, "
            "fact ->> 'detail' AS detail FROM fixity_findings "
            "WHERE pass_id = ANY($1::text[]) ORDER BY detected_at, storage_path, kind",
            [p["pass_id"] for p in passes],
        )
        open_failures = await pool.fetch(
            "SELECT file_id, element_id, storage_path, fixity FROM files "
            "WHERE fixity ->> 'status' = 'failed' AND deleted_at IS NULL "
            "AND ($1::text IS NULL OR element_id = $1) ORDER BY element_id, storage_path",
            element_id,
        )
    finally:
        await pool.close()
    return FixityReport(
        passes=[_plain(r) for r in passes],
        findings=[_plain(r) for r in findings],
        open_failures=[_plain(r) for r in open_failures],
    )


def _plain(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(record).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, UUID):
            value = str(value)
        out[key] = value
    return out
