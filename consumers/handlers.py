"""Pure decisions of the query projection: a fact in, row changes out. No I/O here.

Repeated and out-of-order facts are harmless by construction: file rows only move to a newer
(version, updated_at), deleted files stay tombstoned, upload statuses only climb in rank, element
fields only take values from a fact newer than the one that set them, audit entries are keyed by
event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.changes import (
    AppendAudit,
    ApplyElementFact,
    Change,
    MarkFileDeleted,
    NoteFileProblem,
    RecordFixityFinding,
    RecordFixityPass,
    RestoreStep,
    UploadStatus,
    UpsertFile,
)
from consumers.file_rows import clean, file_row
from consumers.restore_rows import restore_step
from events import (
    AuditRecorded,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    EventDecodeError,
    FileCommandRejected,
    FileDeleted,
    FileRecord,
    FileRestored,
    FileStored,
    FixityChecked,
    FixityFailed,
    FixityFailedV1,
    FixityRecovered,
    LegalHoldChanged,
    MetadataUpdated,
    ModeChanged,
    ModeChangeRejected,
    ReceivedEvent,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreStarted,
    Topic,
    TopicNames,
    UploadRejected,
    UploadRequested,
    dead_letters,
    decode,
)
from events.uploads import UploadState


def project(event: ReceivedEvent) -> list[Change]:
    """The row changes one decoded event asks for (facts, and upload commands as "queued")."""
    data = event.envelope.data
    envelope = event.envelope
    match data:
        case FileStored(file=record):
            return [UpsertFile(file_row(record)), _stored_upload(record, envelope.correlation_id)]
        case MetadataUpdated(file=record) | LegalHoldChanged(file=record):
            return [UpsertFile(file_row(record))]
        case FileDeleted():
            return [
                MarkFileDeleted(
                    data.file_id, data.deleted_at, clean(data.deleted_by), data.reason.value
                )
            ]
        case UploadRequested():
            return [_queued_upload(data, envelope.time, envelope.correlation_id)]
        case UploadRejected():
            return [
                UploadStatus(
                    file_id=data.file_id,
                    status=UploadState.REJECTED.value,
                    rank=UploadState.REJECTED.rank,
                    status_at=data.rejected_at,
                    reason=data.reason.value,
                    detail=clean(data.detail),
                    element_id=data.element_id,
                    correlation_id=envelope.correlation_id,
                )
            ]
        case FileCommandRejected():
            return [
                NoteFileProblem(
                    data.file_id,
                    "last_rejection",
                    data.rejected_at,
                    clean(data.model_dump(mode="json")),
                )
            ]
        case FixityFailedV1():
            finding = clean(data.model_dump(mode="json"))
            return [
                NoteFileProblem(data.file_id, "fixity_failure", data.detected_at, finding),
                NoteFileProblem(
                    data.file_id,
                    "fixity",
                    data.detected_at,
                    _fixity_status("failed", data.detected_at, None, data.detail),
                ),
            ]
        case FixityFailed():
            return fixity_failure_changes(envelope.id, data)
        case FixityRecovered():
            return [
                NoteFileProblem(
                    data.file_id,
                    "fixity",
                    data.checked_at,
                    _fixity_status("sound", data.checked_at, data.pass_id, "sound again"),
                )
            ]
        case FixityChecked():
            return [ApplyElementFact(data.element_id, data), fixity_pass(data)]
        case (
            ElementRegistered()
            | ElementHeartbeat()
            | ModeChanged()
            | ModeChangeRejected()
            | (ElementFull())
        ):
            return [ApplyElementFact(data.element_id, data)]
        case (
            RestoreStarted()
            | FileRestored()
            | RestoreExpiring()
            | RestoreExpired()
            | RestoreFailed()
        ):
            return [restore_step(data)]
        case AuditRecorded():
            return [
                AppendAudit(
                    event_id=envelope.id,
                    occurred_at=data.occurred_at,
                    action=data.action,
                    actor=clean(data.actor),
                    subject=clean(data.subject),
                    outcome=data.outcome,
                    reason=clean(data.reason),
                    details=clean(data.details),
                    source=clean(envelope.source),
                    correlation_id=clean(envelope.correlation_id),
                )
            ]
    return []


def _fixity_status(
    status: str, at: datetime, pass_id: str | None, detail: str, kind: str | None = None
) -> dict[str, Any]:
    return clean(
        {
            "status": status,
            "checked_at": at.isoformat(),
            "pass_id": pass_id,
            "kind": kind,
            "detail": detail,
        }
    )


def fixity_failure_changes(event_id: str, data: FixityFailed) -> list[Change]:
    """A finding: kept for reports; on a known file, also its status and last failure."""
    fact = clean(data.model_dump(mode="json"))
    changes: list[Change] = [
        RecordFixityFinding(
            event_id=event_id,
            element_id=data.element_id,
            file_id=data.file_id,
            storage_path=clean(data.storage_path),
            kind=data.kind.value,
            pass_id=data.pass_id,
            detected_at=data.detected_at,
            fact=fact,
        )
    ]
    if data.file_id is not None:
        status = _fixity_status(
            "failed", data.detected_at, data.pass_id, clean(data.detail), data.kind.value
        )
        changes += [
            NoteFileProblem(data.file_id, "fixity_failure", data.detected_at, fact),
            NoteFileProblem(data.file_id, "fixity", data.detected_at, status),
        ]
    return changes


def fixity_pass(data: FixityChecked) -> RecordFixityPass:
    """A pass, as the report and the files' last checks need it."""
    return RecordFixityPass(
        pass_id=data.pass_id,
        element_id=data.element_id,
        scope=data.scope,
        file_id=data.file_id,
        complete=data.complete,
        started_at=data.started_at,
        finished_at=data.finished_at,
        checked=data.checked,
        sound=data.sound,
        failed=data.failed,
        unreadable=data.unreadable,
        bytes_checked=data.bytes_checked,
        findings={k.value: v for k, v in data.findings.items()},
        fact=clean(data.model_dump(mode="json")),
    )


def dead_letter_changes(record: Any, names: TopicNames, max_message_bytes: int) -> list[Change]:
    """An upload command that ended in the DLQ is *failed*, with the error it died of.

    Anything else on the DLQ is not the query projection's business (and is never re-lettered).
    """
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
    source = names.logical(headers.get(dead_letters.SOURCE_TOPIC, ""))
    if source not in (Topic.UPLOADS_EDIT, Topic.UPLOADS_RW):
        return []
    try:
        received = decode(
            record.value,
            key=record.key,
            headers=record.headers or (),
            max_bytes=max_message_bytes,
            topic=source,
        )
    except EventDecodeError:
        return []
    command = received.envelope.data
    if not isinstance(command, UploadRequested):
        return []
    return [
        UploadStatus(
            file_id=command.file_id,
            status=UploadState.FAILED.value,
            rank=UploadState.FAILED.rank,
            status_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            reason="dead_lettered",
            detail=clean(headers.get(dead_letters.ERROR, "")[:1000]) or None,
        )
    ]


def queued_upload(command: UploadRequested, *, at: datetime, correlation_id: str) -> UploadStatus:
    """The "queued" status an upload command means (the facade records it the same way)."""
    return _queued_upload(command, at, correlation_id)


def _queued_upload(command: UploadRequested, at: datetime, correlation_id: str) -> UploadStatus:
    return UploadStatus(
        file_id=command.file_id,
        status=UploadState.QUEUED.value,
        rank=UploadState.QUEUED.rank,
        status_at=at,
        original_filename=clean(command.original_filename),
        content_type=clean(command.content_type),
        file_size=command.file_size,
        checksum=command.checksum,
        retention_policy=command.retention_policy.value,
        requested_at=at,
        correlation_id=clean(correlation_id),
    )


def _stored_upload(record: FileRecord, correlation_id: str) -> UploadStatus:
    return UploadStatus(
        file_id=record.file_id,
        status=UploadState.STORED.value,
        rank=UploadState.STORED.rank,
        status_at=record.created_at,
        element_id=record.element_id,
        correlation_id=clean(correlation_id),
    )


def rounds(changes: Sequence[Change]) -> list[list[Change]]:
    """Split changes so that no key occurs twice in a round, keeping each key's order.

    A multi-row ``INSERT ... ON CONFLICT`` may touch a row only once, so a batch holding two
    facts about one file is written as two statements, in the order the facts arrived.
    """
    out: list[list[Change]] = [[]]
    seen: dict[tuple[str, object], int] = {}
    for change in changes:
        identity = (_TABLE[type(change)], change.key)
        index = seen.get(identity, -1) + 1
        seen[identity] = index
        if index == len(out):
            out.append([])
        out[index].append(change)
    return out if out[0] else []


_TABLE: dict[type, str] = {
    UpsertFile: "files",
    MarkFileDeleted: "files",
    NoteFileProblem: "files",
    UploadStatus: "uploads",
    ApplyElementFact: "elements",
    AppendAudit: "audit_log",
    RecordFixityFinding: "fixity_findings",
    RecordFixityPass: "fixity_passes",
    RestoreStep: "restores",
}
