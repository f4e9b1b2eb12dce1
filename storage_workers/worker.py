"""One element's single writer: its state, and what every kind of command shares.

Framework-free: the service hands it consumer records and two callbacks, ``announce`` (publish
facts and dead letters) and ``acknowledge`` (commit offsets up to a record). What happens to
each kind of record lives beside this module: :mod:`~storage_workers.uploads`,
:mod:`~storage_workers.commands` (file and element commands) and
:mod:`~storage_workers.lifecycle` (loading, TTL expiry, leftover staged bytes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias
from uuid import UUID

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

import events
from auth import SignatureCache, TokenVerifier
from events import (
    DeletionReason,
    FileDeleted,
    Outgoing,
    OutgoingRecord,
    RejectionReason,
    Topic,
    UploadRejected,
    new_event,
)
from events.tracing import TraceHeaders
from storage_workers.admission import Admitted, Refused, admit
from storage_workers.backends import ObjectMissing, StorageBackend
from storage_workers.capacity import Capacity, Floors, measure
from storage_workers.catalogue import Catalogue, CatalogueEntry
from storage_workers.claims import UploadClaims
from storage_workers.documents import DocumentRegistry, LocalDocuments
from storage_workers.durability import Change, FileRemoval, NewFile, SidecarRewrite, commit_changes
from storage_workers.element import ElementState
from storage_workers.groups import storage_group_of
from storage_workers.handlers import ElementView
from storage_workers.journal import Journal, JournalEntry
from storage_workers.legal_holds import HeldExpiries
from storage_workers.metrics import StorageMetrics
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import Sidecar, Templates, decode_sidecar
from storage_workers.staging import Staging

log = logging.getLogger(__name__)

Record: TypeAlias = "ConsumerRecord[Any, Any]"
Announce = Callable[[Sequence[Outgoing], Sequence[OutgoingRecord]], Awaitable[None]]
Acknowledge = Callable[[Sequence[Record]], Awaitable[None]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Limits:
    """Knobs that shape decisions."""

    capacity_bytes: int
    floors: Floors
    max_message_bytes: int
    max_command_age: timedelta
    replay: bool
    claim_lease_s: float = 300.0
    """An unfinished claim older than this may be taken over even from a live element."""


class ElementWorker:
    """The single writer of one storage element."""

    def __init__(
        self,
        *,
        backend: StorageBackend,
        state: ElementState,
        staging: Staging,
        verifier: TokenVerifier,
        topics: events.TopicNames,
        limits: Limits,
        metrics: StorageMetrics,
        priority: int = 0,
        clock: Clock = utc_now,
        claims: UploadClaims | None = None,
        peer_alive: Callable[[str], bool] = lambda _element_id: True,
        documents: DocumentRegistry | None = None,
        cold: StorageBackend | None = None,
        restore_element_id: str | None = None,
    ) -> None:
        self.backend = backend
        self.cold = cold
        """The element's cold tier (None: an ar element keeps its content in place)."""
        self.restore_element_id = restore_element_id
        """The edit element that keeps restored copies of this element's archived files."""
        self.journal = Journal(backend, cold)
        self.state = state
        self.staging = staging
        self.verifier = verifier
        self.topics = topics
        self.limits = limits
        self.metrics = metrics
        self.priority = priority
        self.clock = clock
        self.claims = claims
        """Which element holds each upload (None: this element's catalogue alone decides)."""
        self.peer_alive = peer_alive
        """Whether an element's worker was heard from lately."""
        self.documents: DocumentRegistry = documents or LocalDocuments()
        """Documents and their version numbers (shared by every element with claims on)."""
        self.held_expiries = HeldExpiries()
        self.catalogue = Catalogue()
        self.restored_bytes = 0
        """What the restored copies this element keeps for a while take (an edit element's)."""
        self.deleted: set[str] = set()
        self.templates = Templates({})
        self.source = f"artstore://storage/{state.element_id}"
        self.lock = asyncio.Lock()
        self.cleanups: set[asyncio.Task[None]] = set()

    @property
    def element_id(self) -> str:
        """The element this worker writes."""
        return self.state.element_id

    # -- what every kind of command shares -----------------------------------------------------

    def capacity(self) -> Capacity:
        """Capacity right now."""
        return measure(
            capacity_bytes=self.limits.capacity_bytes,
            used_bytes=self.catalogue.used_bytes + self.restored_bytes,
            storage_free=self.backend.free_bytes(),
            floors=self.limits.floors,
        )

    def view(self, capacity: Capacity | None = None) -> ElementView:
        """What decisions see."""
        return ElementView(
            self.element_id, self.state.mode, capacity or self.capacity(), self.templates
        )

    def fact(
        self,
        payload: BaseModel,
        correlation_id: str | None = None,
        actor: str | None = None,
        *,
        trace: TraceHeaders | None = None,
    ) -> Outgoing:
        """An envelope from this element; ``actor`` is the verified caller it answers, ``trace``
        the span it continues (:class:`base.telemetry.RecordSpans`)."""
        return Outgoing(
            new_event(payload, source=self.source, correlation_id=correlation_id),
            actor=actor,
            trace=trace,
        )

    async def admit(
        self, record: Record, topic: Topic, signatures: SignatureCache | None = None
    ) -> Admitted | Refused:
        """Decode and authorise a record (counted as consumed)."""
        self.metrics.consumed.labels(self.element_id, topic.value).inc()
        return await admit(
            record,
            topic=topic,
            verifier=self.verifier,
            max_bytes=self.limits.max_message_bytes,
            max_age=self.limits.max_command_age,
            replay=self.limits.replay,
            now=self.clock(),
            signatures=signatures,
        )

    def dead_letter(self, record: Record, failure: events.Failure) -> OutgoingRecord:
        """The record as a DLQ entry, with where it came from and why it is there."""
        self.metrics.dead_lettered.inc()
        return events.dead_letter(
            record,
            topic=self.topics.name(Topic.DLQ),
            group=storage_group_of(self.topics, self.element_id, record.topic),
            failure=failure,
            service="artstore-storage",
            max_bytes=self.limits.max_message_bytes,
            extra={events.dead_letters.ELEMENT_ID: self.element_id},
        )

    def upload_rejected(
        self,
        file_id: UUID,
        reason: RejectionReason,
        detail: str,
        correlation: str | None,
        actor: str | None = None,
        *,
        trace: TraceHeaders | None = None,
    ) -> Outgoing:
        """An UploadRejected fact (counted by reason); ``actor`` is the verified caller."""
        self.metrics.rejected.labels(self.element_id, reason.value).inc()
        return self.fact(
            UploadRejected(
                file_id=file_id,
                element_id=self.element_id,
                reason=reason,
                detail=detail[:2000],
                rejected_at=self.clock(),
                requested_by=actor,
            ),
            correlation,
            actor,
            trace=trace,
        )

    async def commit(
        self,
        changes: list[Change],
        extra: list[Outgoing],
        dead: list[OutgoingRecord],
        handled: Sequence[Record],
        announce: Announce,
        acknowledge: Acknowledge,
        *,
        release: bool = False,
        redeliverable: bool = True,
    ) -> None:
        """Make ``changes`` durable (:func:`commit_changes`), announce, acknowledge ``handled``;
        record in the catalogue what is durable."""

        async def publish(outcomes: list[Outgoing]) -> None:
            facts = outcomes + extra
            if facts or dead:
                await announce(facts, dead)

        async def ack() -> None:
            if handled:
                await acknowledge(handled)

        async def remove_staged(entry: JournalEntry, done: Sequence[Change]) -> None:
            claim_checks = [
                c.operation.claim_check for c in done if isinstance(c.operation, NewFile)
            ]
            # Off the batch's critical path: the next batch need not wait for unlinks.
            task = asyncio.create_task(self._release(entry, claim_checks))
            self.cleanups.add(task)
            task.add_done_callback(self.cleanups.discard)

        try:
            await commit_changes(
                self.backend,
                self.journal,
                changes,
                announce=publish,
                acknowledge=ack,
                release=remove_staged if release else None,
                redeliverable=redeliverable,
            )
        finally:
            # Whatever is durable is in the element, even when a later step (or a rollback)
            # failed: the catalogue must know it, or a retry would store the file again.
            self.apply_to_catalogue(changes)
            await self._documents_deleted(changes)

    async def _documents_deleted(self, changes: Sequence[Change]) -> None:
        removed = [c.file_id for c in changes if c.done and isinstance(c.operation, FileRemoval)]
        if not removed:
            return
        try:
            await self.documents.deleted(removed)
        except Exception:
            # The next start records them from the tombstones (lifecycle.load).
            log.warning("deletions not recorded in the document registry", exc_info=True)

    async def _release(self, entry: JournalEntry, claim_checks: Sequence[str]) -> None:
        try:
            await asyncio.to_thread(self.staging.remove_all, claim_checks)
            await asyncio.to_thread(self.journal.released, entry)
        except Exception:
            log.exception("removing staged bytes failed; the next start retries")

    def removal(
        self, file_id: UUID, path: str, reason: DeletionReason, by: str, corr: str | None
    ) -> Change:
        """A journalled delete of a file, with the FileDeleted fact (and tombstone) it leaves."""
        deleted = FileDeleted(
            file_id=file_id,
            element_id=self.element_id,
            storage_path=path,
            reason=reason,
            deleted_by=by,
            deleted_at=self.clock(),
        )
        return Change(
            FileRemoval(file_id, path, deleted.model_dump_json()), self.fact(deleted, corr)
        )

    def catalogue_entry(self, file_id: UUID) -> CatalogueEntry | None:
        """The element's current entry of ``file_id`` (None: it does not hold the file)."""
        return self.catalogue.get(file_id)

    async def read_sidecar(self, file_id: UUID) -> Sidecar | None:
        """The stored sidecar of ``file_id``, if the element holds the file."""
        entry = self.catalogue.get(file_id)
        if entry is None:
            return None
        key = sidecar_path(entry.storage_path)
        try:
            raw = await asyncio.to_thread(self.backend.read_bytes, key)
        except ObjectMissing:
            return None
        return decode_sidecar(raw, key=key, element_id=self.element_id)

    def apply_to_catalogue(self, changes: Sequence[Change]) -> None:
        """Record what durable changes did to the element's files."""
        for change in changes:
            op = change.operation
            if not change.done:
                # A rewrite that failed may have landed all the same (its sidecar renamed
                # before a later step failed): a hold it places counts at once, as keeping a
                # file too long is safe and deleting a held one is not. The command's
                # redelivery (or the next start) brings the catalogue back to the sidecar.
                if isinstance(op, SidecarRewrite) and op.sidecar.legal_hold is not None:
                    self.record_hold(op.sidecar)
                continue
            if isinstance(op, NewFile | SidecarRewrite):
                self.catalogue.add(CatalogueEntry.of(op.sidecar, op.encoded))
            elif isinstance(op, FileRemoval):
                self.catalogue.remove(op.file_id)
                self.deleted.add(str(op.file_id))

    def record_hold(self, sidecar: Sidecar) -> None:
        """Make the catalogue (which the expiry sweep reads) say what ``sidecar`` says of the
        file's legal hold."""
        entry = self.catalogue.get(sidecar.file_id)
        if entry is not None:
            placed_at = sidecar.legal_hold.placed_at if sidecar.legal_hold else None
            self.catalogue.add(replace(entry, hold_placed_at=placed_at))

    async def drain(self) -> None:
        """Wait for background removals of staged bytes to finish."""
        if self.cleanups:
            await asyncio.gather(*self.cleanups, return_exceptions=True)
