"""Uploads: a batch of UploadRequested records becomes one durable change and its facts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from auth import SignatureCache
from base import telemetry
from events import (
    Failure,
    FileStored,
    Outgoing,
    OutgoingRecord,
    RejectionReason,
    Topic,
    UploadRejected,
    UploadRequested,
)
from events.tracing import TraceHeaders, record_trace_headers
from storage_workers.admission import Admitted, Refused, catch_up_revocations
from storage_workers.claim_checks import ConfinedClaim, InvalidClaimCheck
from storage_workers.claims import StoredUpload
from storage_workers.documents import DocumentFile
from storage_workers.durability import Change, NewFile
from storage_workers.handlers import (
    AlreadyDone,
    DocumentLink,
    HandBack,
    Reject,
    Store,
    decide_upload,
)
from storage_workers.upload_claiming import (
    claim_new_files,
    record_stored,
    release_unstored,
)

if TYPE_CHECKING:
    from storage_workers.worker import Acknowledge, Announce, ElementWorker, Record

log = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """How far a batch of uploads got."""

    processed: int
    handed_back: str | None = None
    """Why the rest of the batch went back to the topic, if it did."""


@dataclass(frozen=True)
class AdmittedBatch:
    """A batch of upload records, decoded and authorised (admission needs no element state)."""

    records: Sequence[Record]
    admissions: list[Admitted | Refused]


async def admit_uploads(
    worker: ElementWorker, records: Sequence[Record], topic: Topic
) -> AdmittedBatch:
    """Decode and authorise a batch: pure work, which may run while the previous batch is
    still being written. One signature check per distinct token; validity is still checked at
    each record's own timestamp. Raises :class:`TransientFailure` if the keys are unreachable."""
    signatures = SignatureCache()
    await catch_up_revocations(worker.verifier)
    return AdmittedBatch(records, [await worker.admit(r, topic, signatures) for r in records])


async def store_uploads(
    worker: ElementWorker,
    batch: AdmittedBatch,
    *,
    announce: Announce,
    acknowledge: Acknowledge,
) -> BatchOutcome:
    """Decide an admitted batch against the element and store it in one durable change; stop
    at the first hand-back. May be called again with the same batch after a failure.

    Traced, the batch is an ``artstore.store batch`` span and each record decided gets an
    ``artstore.store`` span, the child of the span its command's ``traceparent`` names (linked
    to the batch's), ended once the batch is durable and announced; the facts answering it
    continue that span. Untraced, they carry the command's trace headers themselves."""
    tracer = telemetry.tracer("artstore.storage")
    if tracer is None:
        spans = telemetry.RecordSpans(None, "artstore.store")
        return await _store(worker, batch, spans, announce=announce, acknowledge=acknowledge)
    with tracer.start_as_current_span(
        "artstore.store batch",
        attributes={
            "artstore.element_id": worker.element_id,
            "messaging.batch.message_count": len(batch.records),
        },
    ):
        spans = telemetry.RecordSpans(tracer, "artstore.store")
        try:
            outcome = await _store(worker, batch, spans, announce=announce, acknowledge=acknowledge)
        except BaseException as exc:
            spans.end(exc)
            raise
        spans.end()
        return outcome


async def _store(
    worker: ElementWorker,
    batch: AdmittedBatch,
    spans: telemetry.RecordSpans,
    *,
    announce: Announce,
    acknowledge: Acknowledge,
) -> BatchOutcome:
    records = batch.records
    async with worker.lock:
        capacity = worker.capacity()
        changes: list[Change] = []
        extra: list[Outgoing] = []
        dead: list[OutgoingRecord] = []
        planned: dict[UUID, str] = {}
        already: list[StoredUpload] = []
        reserved: list[UUID] = []
        outcome = BatchOutcome(processed=len(records))
        for index, (record, admitted) in enumerate(zip(records, batch.admissions, strict=True)):
            trace: TraceHeaders | None = record_trace_headers(record.headers)
            if spans.active:
                trace = spans.open(trace, **_span_attributes(worker, record, admitted))
            if isinstance(admitted, Refused):
                if admitted.subject is not None and _is_uuid(admitted.subject):
                    corr = admitted.event.envelope.correlation_id if admitted.event else None
                    extra.append(
                        worker.upload_rejected(
                            UUID(admitted.subject),
                            admitted.reason,
                            admitted.detail,
                            corr,
                            trace=trace,
                        )
                    )
                else:
                    dead.append(
                        worker.dead_letter(
                            record, Failure.of(admitted.reason.value, admitted.detail)
                        )
                    )
                continue
            command: UploadRequested = admitted.command
            corr = admitted.event.envelope.correlation_id
            if command.file_id in planned:
                if planned[command.file_id] != command.checksum:
                    extra.append(
                        worker.upload_rejected(
                            command.file_id,
                            RejectionReason.DUPLICATE_FILE_ID,
                            "the same file_id came twice with different checksums",
                            corr,
                            admitted.caller.client_id,
                            trace=trace,
                        )
                    )
                continue
            try:
                # Trust nothing the command names: its claim check must be the caller's own
                # staged bytes, decided before anything is read.
                claim = worker.staging.confine(command.staged, admitted.caller.client_id)
            except InvalidClaimCheck as exc:
                extra.append(
                    worker.upload_rejected(
                        command.file_id,
                        RejectionReason.INVALID_CLAIM_CHECK,
                        str(exc),
                        corr,
                        admitted.caller.client_id,
                        trace=trace,
                    )
                )
                continue
            document: DocumentLink | None = None
            if command.version_of is not None:
                # The registry every element shares decides the document and the number.
                link = await worker.documents.reserve(
                    file_id=command.file_id,
                    version_of=command.version_of,
                    client_id=admitted.caller.client_id,
                    role=admitted.caller.role,
                    element_id=worker.element_id,
                )
                if isinstance(link, Reject):
                    extra.append(
                        worker.upload_rejected(
                            command.file_id,
                            link.reason,
                            link.detail,
                            corr,
                            admitted.caller.client_id,
                            trace=trace,
                        )
                    )
                    continue
                document = link
                reserved.append(command.file_id)
            decision = decide_upload(
                command,
                element=worker.view(capacity),
                existing=worker.catalogue.get(command.file_id),
                deleted=str(command.file_id) in worker.deleted,
                caller=admitted.caller,
                now=worker.clock(),
                document=document,
            )
            if isinstance(decision, HandBack):
                outcome = BatchOutcome(processed=index, handed_back=decision.detail)
                break
            if isinstance(decision, Reject):
                extra.append(
                    worker.upload_rejected(
                        command.file_id,
                        decision.reason,
                        decision.detail,
                        corr,
                        admitted.caller.client_id,
                        trace=trace,
                    )
                )
            elif isinstance(decision, AlreadyDone):
                sidecar = await worker.read_sidecar(command.file_id)
                if sidecar is not None:
                    extra.append(
                        worker.fact(FileStored(file=sidecar.to_record()), corr, trace=trace)
                    )
                    already.append(
                        StoredUpload(command.file_id, command.checksum, sidecar.to_record())
                    )
            elif isinstance(decision, Store):
                planned[command.file_id] = command.checksum
                capacity = capacity.after(command.file_size)
                changes.append(_new_file(worker, command, claim, decision, corr, trace))
        changes, elsewhere = await claim_new_files(worker, changes)
        extra.extend(elsewhere)
        handled = list(records[: outcome.processed])

        async def announce_claimed(
            facts: Sequence[Outgoing], dead: Sequence[OutgoingRecord]
        ) -> None:
            # The claims learn what is durable before anyone hears of it: a redelivery to
            # another element from here on is re-announced from the claim, not stored again.
            withdrawn = await record_stored(worker, changes, already)
            # Withdrawn changes are no longer done: only what stays here is recorded.
            kept = [c for c in changes if c.done]
            await worker.documents.stored(worker.element_id, _documents(kept, already))
            await announce([f for f in facts if not any(f is c.fact for c in withdrawn)], dead)

        try:
            await worker.commit(
                changes, extra, dead, handled, announce_claimed, acknowledge, release=True
            )
        except BaseException:
            await release_unstored(worker, changes)
            await _release_reservations(worker, reserved, changes, already)
            raise
        await release_unstored(worker, changes)
        await _release_reservations(worker, reserved, changes, already)
        for change in changes:
            if change.done:
                assert isinstance(change.operation, NewFile)
                worker.metrics.stored.inc()
                worker.metrics.bytes_written.inc(change.operation.sidecar.file_size)
            elif change.outcome is not None:
                reason = change.outcome.envelope.data.reason
                worker.metrics.rejected.labels(worker.element_id, reason.value).inc()
        return outcome


def _documents(changes: Sequence[Change], already: Sequence[StoredUpload]) -> list[DocumentFile]:
    """The document registry's view of files durable here."""
    records = [c.operation.sidecar.to_record() for c in changes if isinstance(c.operation, NewFile)]
    records += [u.record for u in already]
    return [
        DocumentFile(r.file_id, r.document, r.document_number, r.created_by_id) for r in records
    ]


async def _release_reservations(
    worker: ElementWorker,
    reserved: Sequence[UUID],
    changes: Sequence[Change],
    already: Sequence[StoredUpload],
) -> None:
    """Give back the version numbers of uploads that were not stored (rejected, rolled back,
    handed back); those of durable files stay theirs."""
    durable = {c.file_id for c in changes if c.done} | {u.file_id for u in already}
    unstored = [i for i in reserved if i not in durable]
    if unstored:
        try:
            await worker.documents.release(unstored)
        except Exception:
            # A reservation left behind is a gap in the numbers, never a collision.
            log.warning("version reservations not released", exc_info=True)


def _new_file(
    worker: ElementWorker,
    command: UploadRequested,
    claim: ConfinedClaim,
    decision: Store,
    corr: str,
    trace: TraceHeaders | None,
) -> Change:
    sidecar = decision.sidecar

    def rejected(reason: RejectionReason, detail: str) -> Outgoing:
        return worker.fact(
            UploadRejected(
                file_id=command.file_id,
                element_id=worker.element_id,
                reason=reason,
                detail=detail,
                rejected_at=worker.clock(),
                requested_by=sidecar.created_by_id,
            ),
            corr,
            sidecar.created_by_id,
            trace=trace,
        )

    return Change(
        NewFile(
            sidecar,
            decision.encoded,
            lambda: worker.staging.open(claim, sidecar.file_size),
            rejected,
            claim.model_dump_json(),
        ),
        worker.fact(FileStored(file=sidecar.to_record()), corr, trace=trace),
    )


def _span_attributes(
    worker: ElementWorker, record: Record, admitted: Admitted | Refused
) -> dict[str, Any]:
    """What a record's ``artstore.store`` span says about it (tracing on only)."""
    attributes: dict[str, Any] = {
        "artstore.element_id": worker.element_id,
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
    }
    if isinstance(admitted, Refused):
        attributes["artstore.file_id"] = admitted.subject
        attributes["artstore.refused"] = admitted.reason.value
    else:
        attributes["artstore.file_id"] = str(admitted.command.file_id)
    return attributes


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
