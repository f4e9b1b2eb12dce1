"""One element's command processing: admission, decisions, the durable change, its facts.

Framework-free: the service hands it consumer records and two callbacks, ``announce`` (publish
facts and dead letters) and ``acknowledge`` (commit offsets up to a record).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias
from uuid import UUID

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

import events
from auth import SignatureCache, TokenVerifier
from events import (
    ChangeMode,
    DeleteFile,
    DeletionReason,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    ModeChanged,
    ModeChangeRejected,
    Outgoing,
    OutgoingRecord,
    RejectionReason,
    Topic,
    UpdateMetadata,
    UploadRejected,
    UploadRequested,
    new_event,
)
from storage_workers import element as element_file
from storage_workers.admission import Admitted, Refused, admit
from storage_workers.backends import ObjectMissing, StorageBackend
from storage_workers.capacity import Capacity, Floors, measure
from storage_workers.catalogue import Catalogue, CatalogueEntry
from storage_workers.durability import Change, FileRemoval, NewFile, SidecarRewrite, commit_changes
from storage_workers.element import ElementState
from storage_workers.handlers import (
    AlreadyDone,
    ElementView,
    HandBack,
    Reject,
    Remove,
    Rewrite,
    Store,
    SwitchMode,
    decide_delete,
    decide_mode_change,
    decide_update,
    decide_upload,
)
from storage_workers.journal import Journal, tombstone_key
from storage_workers.metrics import StorageMetrics
from storage_workers.naming import sidecar_path
from storage_workers.sidecar import Sidecar, Templates, decode_sidecar
from storage_workers.staging import Staging

log = logging.getLogger(__name__)

Record: TypeAlias = "ConsumerRecord[Any, Any]"
Announce = Callable[[Sequence[Outgoing], Sequence[OutgoingRecord]], Awaitable[None]]
Acknowledge = Callable[[Sequence[Record]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Knobs that shape decisions."""

    capacity_bytes: int
    floors: Floors
    max_message_bytes: int
    max_command_age: timedelta
    replay: bool


@dataclass
class BatchOutcome:
    """How far a batch of uploads got."""

    processed: int
    handed_back: str | None = None
    """Why the rest of the batch went back to the topic, if it did."""


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
    ) -> None:
        self.backend = backend
        self.journal = Journal(backend)
        self.state = state
        self.staging = staging
        self.verifier = verifier
        self.topics = topics
        self.limits = limits
        self.metrics = metrics
        self.priority = priority
        self.catalogue = Catalogue()
        self.deleted: set[str] = set()
        self.templates = Templates({})
        self.source = f"artstore://storage/{state.element_id}"
        self.lock = asyncio.Lock()
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def element_id(self) -> str:
        """The element this worker writes."""
        return self.state.element_id

    async def load(self) -> None:
        """Scan the element: templates, files, tombstones."""
        self.templates = Templates(
            await asyncio.to_thread(element_file.load_templates, self.backend)
        )
        self.catalogue = await asyncio.to_thread(Catalogue.load, self.backend, self.element_id)
        self.deleted = await asyncio.to_thread(self._tombstones)

    async def drain(self) -> None:
        """Wait for background removals of staged bytes to finish."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)

    def _tombstones(self) -> set[str]:
        prefix = element_file.TOMBSTONES_DIR.rstrip("/")
        return {i.key.rsplit("/", 1)[-1].removesuffix(".json") for i in self.backend.list(prefix)}

    def capacity(self) -> Capacity:
        """Capacity right now."""
        return measure(
            capacity_bytes=self.limits.capacity_bytes,
            used_bytes=self.catalogue.used_bytes,
            storage_free=self.backend.free_bytes(),
            floors=self.limits.floors,
        )

    def view(self, capacity: Capacity | None = None) -> ElementView:
        """What decisions see."""
        return ElementView(
            self.element_id, self.state.mode, capacity or self.capacity(), self.templates
        )

    def fact(self, payload: BaseModel, correlation_id: str | None = None) -> Outgoing:
        """An envelope from this element."""
        return Outgoing(new_event(payload, source=self.source, correlation_id=correlation_id))

    async def _admit(
        self, record: Record, topic: Topic, signatures: SignatureCache | None = None
    ) -> Admitted | Refused:
        self.metrics.consumed.labels(self.element_id, topic.value).inc()
        return await admit(
            record,
            topic=topic,
            verifier=self.verifier,
            max_bytes=self.limits.max_message_bytes,
            max_age=self.limits.max_command_age,
            replay=self.limits.replay,
            now=datetime.now(UTC),
            signatures=signatures,
        )

    def dead_letter(self, record: Record, error: str, attempts: int = 1) -> OutgoingRecord:
        """The record as a DLQ entry, with where it came from and why it is there."""
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (record.headers or ())}
        headers.update(
            {
                "dlq_source_topic": record.topic,
                "dlq_source_partition": str(record.partition),
                "dlq_source_offset": str(record.offset),
                "dlq_error": error[:1000],
                "dlq_attempts": str(attempts),
                "dlq_element_id": self.element_id,
            }
        )
        self.metrics.dead_lettered.inc()
        return OutgoingRecord(
            topic=self.topics.name(Topic.DLQ),
            key=record.key or b"",
            value=record.value or b"",
            headers=headers,
            event_type="artstore.dlq",
        )

    def _upload_rejected(
        self, file_id: UUID, reason: RejectionReason, detail: str, correlation: str | None
    ) -> Outgoing:
        self.metrics.rejected.labels(self.element_id, reason.value).inc()
        return self.fact(
            UploadRejected(
                file_id=file_id,
                element_id=self.element_id,
                reason=reason,
                detail=detail[:2000],
                rejected_at=datetime.now(UTC),
            ),
            correlation,
        )

    # -- uploads -------------------------------------------------------------------------------

    async def process_uploads(
        self,
        records: Sequence[Record],
        topic: Topic,
        *,
        announce: Announce,
        acknowledge: Acknowledge,
    ) -> BatchOutcome:
        """Store a batch of uploads in one durable change; stop at the first hand-back."""
        async with self.lock:
            capacity = self.capacity()
            changes: list[Change] = []
            extra: list[Outgoing] = []
            dead: list[OutgoingRecord] = []
            planned: dict[UUID, str] = {}
            outcome = BatchOutcome(processed=len(records))
            signatures = SignatureCache()
            for index, record in enumerate(records):
                admitted = await self._admit(record, topic, signatures)
                if isinstance(admitted, Refused):
                    if admitted.subject is not None and _is_uuid(admitted.subject):
                        corr = admitted.event.envelope.correlation_id if admitted.event else None
                        extra.append(
                            self._upload_rejected(
                                UUID(admitted.subject), admitted.reason, admitted.detail, corr
                            )
                        )
                    else:
                        dead.append(self.dead_letter(record, admitted.detail))
                    continue
                command: UploadRequested = admitted.command
                corr = admitted.event.envelope.correlation_id
                if command.file_id in planned:
                    if planned[command.file_id] != command.checksum:
                        extra.append(
                            self._upload_rejected(
                                command.file_id,
                                RejectionReason.DUPLICATE_FILE_ID,
                                "the same file_id came twice with different checksums",
                                corr,
                            )
                        )
                    continue
                decision = decide_upload(
                    command,
                    element=self.view(capacity),
                    existing=self.catalogue.get(command.file_id),
                    deleted=str(command.file_id) in self.deleted,
                    caller=admitted.caller,
                    now=datetime.now(UTC),
                )
                if isinstance(decision, HandBack):
                    outcome = BatchOutcome(processed=index, handed_back=decision.detail)
                    break
                if isinstance(decision, Reject):
                    extra.append(
                        self._upload_rejected(
                            command.file_id, decision.reason, decision.detail, corr
                        )
                    )
                elif isinstance(decision, AlreadyDone):
                    sidecar = await self._read_sidecar(command.file_id)
                    if sidecar is not None:
                        extra.append(self.fact(FileStored(file=sidecar.to_record()), corr))
                elif isinstance(decision, Store):
                    planned[command.file_id] = command.checksum
                    capacity = capacity.after(command.file_size)
                    changes.append(self._new_file(command, decision, corr))
            handled = list(records[: outcome.processed])
            await self._commit(changes, extra, dead, handled, announce, acknowledge, release=True)
            for change in changes:
                if change.done:
                    assert isinstance(change.operation, NewFile)
                    self.catalogue.add(CatalogueEntry.of(change.operation.sidecar))
                    self.metrics.stored.inc()
                    self.metrics.bytes_written.inc(change.operation.sidecar.file_size)
                elif change.outcome is not None:
                    reason = change.outcome.envelope.data.reason
                    self.metrics.rejected.labels(self.element_id, reason.value).inc()
            return outcome

    def _new_file(self, command: UploadRequested, decision: Store, corr: str) -> Change:
        staged, sidecar = command.staged, decision.sidecar

        def rejected(reason: RejectionReason, detail: str) -> Outgoing:
            return self.fact(
                UploadRejected(
                    file_id=command.file_id,
                    element_id=self.element_id,
                    reason=reason,
                    detail=detail,
                    rejected_at=datetime.now(UTC),
                ),
                corr,
            )

        change = Change(
            NewFile(sidecar, decision.encoded, lambda: self.staging.open(staged), rejected),
            self.fact(FileStored(file=sidecar.to_record()), corr),
        )
        change.staged = staged  # type: ignore[attr-defined]
        return change

    async def _commit(
        self,
        changes: list[Change],
        extra: list[Outgoing],
        dead: list[OutgoingRecord],
        handled: Sequence[Record],
        announce: Announce,
        acknowledge: Acknowledge,
        *,
        release: bool = False,
    ) -> None:
        async def publish(outcomes: list[Outgoing]) -> None:
            facts = outcomes + extra
            if facts or dead:
                await announce(facts, dead)

        async def ack() -> None:
            if handled:
                await acknowledge(handled)

        async def remove_staged(done: Sequence[Change]) -> None:
            staged = [s for c in done if (s := getattr(c, "staged", None)) is not None]
            if staged:
                # Off the batch's critical path: the next batch need not wait for unlinks.
                task = asyncio.create_task(asyncio.to_thread(self.staging.remove_all, staged))
                self._cleanups.add(task)
                task.add_done_callback(self._cleanups.discard)

        await commit_changes(
            self.backend,
            self.journal,
            changes,
            announce=publish,
            acknowledge=ack,
            release=remove_staged if release else None,
        )

    async def _read_sidecar(self, file_id: UUID) -> Sidecar | None:
        entry = self.catalogue.get(file_id)
        if entry is None:
            return None
        key = sidecar_path(entry.storage_path)
        try:
            raw = await asyncio.to_thread(self.backend.read_bytes, key)
        except ObjectMissing:
            return None
        return decode_sidecar(raw, key=key, element_id=self.element_id)

    # -- file commands -------------------------------------------------------------------------

    async def process_file_command(
        self, record: Record, *, announce: Announce, acknowledge: Acknowledge
    ) -> None:
        """An UpdateMetadata or DeleteFile addressed to this element (others are skipped)."""
        async with self.lock:
            admitted = await self._admit(record, Topic.FILE_COMMANDS)
            extra: list[Outgoing] = []
            dead: list[OutgoingRecord] = []
            changes: list[Change] = []
            if isinstance(admitted, Refused):
                event = admitted.event
                if event is None:
                    dead.append(self.dead_letter(record, admitted.detail))
                elif event.data.element_id == self.element_id:
                    extra.append(
                        self._command_rejected(event.data, admitted.reason, admitted.detail, event)
                    )
            elif admitted.command.element_id == self.element_id:
                command = admitted.command
                corr = admitted.event.envelope.correlation_id
                if isinstance(command, UpdateMetadata):
                    current = await self._read_sidecar(command.file_id)
                    decision = decide_update(
                        command,
                        element=self.view(),
                        current=current,
                        command_id=admitted.event.envelope.id,
                        now=datetime.now(UTC),
                    )
                    if isinstance(decision, Rewrite):
                        changes.append(
                            Change(
                                SidecarRewrite(decision.sidecar, decision.encoded),
                                self.fact(
                                    MetadataUpdated(
                                        file=decision.sidecar.to_record(),
                                        updated_by=admitted.caller.client_id,
                                    ),
                                    corr,
                                ),
                            )
                        )
                    elif isinstance(decision, AlreadyDone) and current is not None:
                        extra.append(
                            self.fact(
                                MetadataUpdated(
                                    file=current.to_record(), updated_by=admitted.caller.client_id
                                ),
                                corr,
                            )
                        )
                    elif isinstance(decision, Reject):
                        extra.append(
                            self._command_rejected(
                                command, decision.reason, decision.detail, admitted.event
                            )
                        )
                else:
                    assert isinstance(command, DeleteFile)
                    deleted = str(command.file_id) in self.deleted
                    verdict = decide_delete(
                        command,
                        element=self.view(),
                        current=self.catalogue.get(command.file_id),
                        deleted=deleted,
                    )
                    if isinstance(verdict, Remove):
                        changes.append(
                            self._removal(
                                command.file_id,
                                verdict.storage_path,
                                DeletionReason.REQUESTED,
                                admitted.caller.client_id,
                                corr,
                            )
                        )
                    elif isinstance(verdict, AlreadyDone):
                        tomb = await asyncio.to_thread(
                            self.backend.read_bytes, tombstone_key(str(command.file_id))
                        )
                        extra.append(self.fact(FileDeleted.model_validate_json(tomb), corr))
                    else:
                        extra.append(
                            self._command_rejected(
                                command, verdict.reason, verdict.detail, admitted.event
                            )
                        )
            await self._commit(changes, extra, dead, [record], announce, acknowledge)
            self._apply_to_catalogue(changes)

    def _removal(
        self, file_id: UUID, path: str, reason: DeletionReason, by: str, corr: str | None
    ) -> Change:
        deleted = FileDeleted(
            file_id=file_id,
            element_id=self.element_id,
            storage_path=path,
            reason=reason,
            deleted_by=by,
            deleted_at=datetime.now(UTC),
        )
        return Change(
            FileRemoval(file_id, path, deleted.model_dump_json()), self.fact(deleted, corr)
        )

    def _apply_to_catalogue(self, changes: list[Change]) -> None:
        for change in changes:
            op = change.operation
            if not change.done:
                continue
            if isinstance(op, SidecarRewrite):
                self.catalogue.add(CatalogueEntry.of(op.sidecar))
            elif isinstance(op, FileRemoval):
                self.catalogue.remove(op.file_id)
                self.deleted.add(str(op.file_id))

    def _command_rejected(
        self,
        command: UpdateMetadata | DeleteFile,
        reason: RejectionReason,
        detail: str,
        event: events.ReceivedEvent,
    ) -> Outgoing:
        self.metrics.rejected.labels(self.element_id, reason.value).inc()
        return self.fact(
            FileCommandRejected(
                file_id=command.file_id,
                element_id=self.element_id,
                command="update_metadata" if isinstance(command, UpdateMetadata) else "delete_file",
                reason=reason,
                detail=detail[:2000],
                rejected_at=datetime.now(UTC),
            ),
            event.envelope.correlation_id,
        )

    # -- TTL -----------------------------------------------------------------------------------

    async def sweep_expired(self, *, announce: Announce, limit: int = 200) -> int:
        """Delete expired temporary files through the journalled delete path."""
        async with self.lock:
            due = self.catalogue.expired(datetime.now(UTC))[:limit]
            if not due:
                return 0
            changes = [
                self._removal(
                    e.file_id,
                    e.storage_path,
                    DeletionReason.TTL_EXPIRED,
                    f"storage:{self.element_id}:ttl",
                    None,
                )
                for e in due
            ]

            async def no_ack(_records: Sequence[Record]) -> None:
                return None

            await self._commit(changes, [], [], [], announce, no_ack)
            self._apply_to_catalogue(changes)
            return len(changes)

    # -- element commands ----------------------------------------------------------------------

    async def process_element_command(
        self, record: Record, *, announce: Announce, acknowledge: Acknowledge
    ) -> None:
        """A ChangeMode for this element: element.json first, then ModeChanged."""
        async with self.lock:
            admitted = await self._admit(record, Topic.ELEMENT_COMMANDS)
            facts: list[Outgoing] = []
            dead: list[OutgoingRecord] = []
            if isinstance(admitted, Refused):
                event = admitted.event
                if event is None:
                    dead.append(self.dead_letter(record, admitted.detail))
                elif event.data.element_id == self.element_id:
                    facts.append(
                        self._mode_refused(
                            event.data, admitted.detail, [], event.envelope.correlation_id
                        )
                    )
            elif admitted.command.element_id == self.element_id:
                command: ChangeMode = admitted.command
                corr = admitted.event.envelope.correlation_id
                decision = decide_mode_change(command, current=self.state.mode)
                if isinstance(decision, SwitchMode):
                    now = datetime.now(UTC)
                    before = self.state.mode
                    new_state = self.state.with_mode(
                        decision.target, by=admitted.caller.client_id, reason=command.reason, at=now
                    )
                    await asyncio.to_thread(element_file.save, self.backend, new_state)
                    self.state = new_state
                    facts.append(
                        self.fact(
                            ModeChanged(
                                element_id=self.element_id,
                                from_mode=before,
                                to_mode=decision.target,
                                changed_by=admitted.caller.client_id,
                                reason=command.reason,
                                changed_at=now,
                            ),
                            corr,
                        )
                    )
                else:
                    facts.append(
                        self._mode_refused(command, decision.reason, decision.allowed, corr)
                    )
            if facts or dead:
                await announce(facts, dead)
            await acknowledge([record])

    def _mode_refused(
        self, command: ChangeMode, reason: str, allowed: list[events.Mode], corr: str
    ) -> Outgoing:
        return self.fact(
            ModeChangeRejected(
                element_id=self.element_id,
                current_mode=self.state.mode,
                requested_mode=command.target_mode,
                allowed=allowed,
                reason=reason,
                rejected_at=datetime.now(UTC),
            ),
            corr,
        )


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
