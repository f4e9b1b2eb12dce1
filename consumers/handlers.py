"""Pure decisions of the query projection: a fact in, row changes out. No I/O here.

Repeated and out-of-order facts are harmless by construction: file rows only move to a newer
(version, updated_at), deleted files stay tombstoned, upload statuses only climb in rank, element
fields only take values from a fact newer than the one that set them, audit entries are keyed by
event id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, TypeVar

from consumers.changes import (
    AppendAudit,
    ApplyElementFact,
    Change,
    ElementFact,
    FileRow,
    MarkFileDeleted,
    NoteFileProblem,
    RecordFixityFinding,
    RecordFixityPass,
    UploadStatus,
    UpsertFile,
)
from events import (
    AuditRecorded,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    EventDecodeError,
    FileCommandRejected,
    FileDeleted,
    FileRecord,
    FileStored,
    FixityChecked,
    FixityFailed,
    FixityFailedV1,
    FixityRecovered,
    MetadataUpdated,
    ModeChanged,
    ModeChangeRejected,
    ReceivedEvent,
    Topic,
    TopicNames,
    UploadRejected,
    UploadRequested,
    decode,
)

DLQ_SOURCE_TOPIC = "dlq_source_topic"
DLQ_ERROR = "dlq_error"

#: Upload statuses and their rank: a status replaces another only if its rank is higher.
UPLOAD_RANKS = {"queued": 0, "failed": 1, "rejected": 2, "stored": 3}

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_MAX_EXTENSION = 16


def project(event: ReceivedEvent) -> list[Change]:
    """The row changes one decoded event asks for (facts, and upload commands as "queued")."""
    data = event.envelope.data
    envelope = event.envelope
    match data:
        case FileStored(file=record):
            return [UpsertFile(file_row(record)), _stored_upload(record, envelope.correlation_id)]
        case MetadataUpdated(file=record):
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
                    status="rejected",
                    rank=UPLOAD_RANKS["rejected"],
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
    source = names.logical(headers.get(DLQ_SOURCE_TOPIC, ""))
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
            status="failed",
            rank=UPLOAD_RANKS["failed"],
            status_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            reason="dead_lettered",
            detail=clean(headers.get(DLQ_ERROR, "")[:1000]) or None,
        )
    ]


def queued_upload(command: UploadRequested, *, at: datetime, correlation_id: str) -> UploadStatus:
    """The "queued" status an upload command means (the facade records it the same way)."""
    return _queued_upload(command, at, correlation_id)


def _queued_upload(command: UploadRequested, at: datetime, correlation_id: str) -> UploadStatus:
    return UploadStatus(
        file_id=command.file_id,
        status="queued",
        rank=UPLOAD_RANKS["queued"],
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
        status="stored",
        rank=UPLOAD_RANKS["stored"],
        status_at=record.created_at,
        element_id=record.element_id,
        correlation_id=clean(correlation_id),
    )


def file_row(record: FileRecord) -> FileRow:
    """The ``files`` row of a sidecar's state."""
    tags = tuple(clean(tag) for tag in record.tags)
    custom = clean(dict(record.custom_attributes))
    description = clean(record.description)
    filename = clean(record.original_filename)
    return FileRow(
        file_id=record.file_id,
        element_id=record.element_id,
        original_filename=filename,
        storage_filename=clean(record.storage_filename),
        storage_path=clean(record.storage_path),
        extension=extension_of(filename),
        file_size=record.file_size,
        content_type=clean(record.content_type),
        checksum=record.checksum,
        created_at=record.created_at,
        updated_at=record.updated_at,
        created_by_id=clean(record.created_by_id),
        created_by_username=clean(record.created_by_username),
        created_by_fullname=clean(record.created_by_fullname),
        description=description,
        version=record.version,
        retention_policy=record.retention_policy.value,
        ttl_expires_at=record.ttl_expires_at,
        tags=tags,
        metadata=clean(dict(record.metadata)),
        custom_attributes=custom,
        language=language_of(filename, description, tags, custom),
        search_extra=" ".join((*tags, *attribute_words(custom))),
    )


def extension_of(filename: str) -> str:
    """Lowercased extension without the dot ("" when there is none or it is implausibly long)."""
    if "/" in filename or "\\" in filename:
        suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    else:  # the common case, and what PurePosixPath.suffix does for a bare name
        dot = filename.rfind(".")
        suffix = filename[dot:] if 0 < dot < len(filename) - 1 else ""
    if not suffix or len(suffix) - 1 > _MAX_EXTENSION:
        return ""
    return suffix[1:].lower()


def attribute_words(custom: dict[str, Any]) -> list[str]:
    """The values of custom attributes as text (keys are not searchable words)."""
    words: list[str] = []
    for value in custom.values():
        for item in value if isinstance(value, list) else [value]:
            if item is None or isinstance(item, bool):
                continue
            words.append(str(item))
    return words


def language_of(
    filename: str, description: str | None, tags: Iterable[str], custom: dict[str, Any]
) -> str:
    """The document's main language: an explicit ``language`` attribute, else Cyrillic or not.

    Informational (shown and filterable); the search vector always carries both stemmings.
    """
    declared = str(custom.get("language", "")).lower()
    if declared in {"ru", "rus", "russian"}:
        return "russian"
    if declared in {"en", "eng", "english"}:
        return "english"
    text = " ".join((filename, description or "", *tags))
    return "russian" if _CYRILLIC.search(text) else "english"


T = TypeVar("T")


def clean(value: T) -> T:
    """Replace NUL characters, which PostgreSQL text and jsonb refuse, everywhere in a value."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clean(v) for v in value]  # type: ignore[return-value]
    return value


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
}


def merge_element(current: dict[str, Any] | None, fact: ElementFact) -> dict[str, Any]:
    """The element's row after ``fact``; each group of fields only moves forward in time."""
    row: dict[str, Any] = dict(current or {"element_id": fact.element_id})
    match fact:
        case ElementRegistered():
            if _newer(fact.started_at, row.get("started_at")):
                row.update(
                    backend=fact.backend.model_dump(mode="json"),
                    priority=fact.priority,
                    retention_days=fact.retention_days,
                    worker=clean(fact.worker),
                    started_at=fact.started_at,
                )
            _set_mode(row, fact.mode.value, fact.started_at)
            if _newer(fact.started_at, row.get("capacity_as_of")):
                row.update(
                    capacity_bytes=fact.capacity_bytes,
                    free_bytes=fact.free_bytes,
                    capacity_as_of=fact.started_at,
                )
        case ElementHeartbeat():
            _set_mode(row, fact.mode.value, fact.sent_at)
            if _newer(fact.sent_at, row.get("capacity_as_of")):
                row.update(
                    capacity_bytes=fact.capacity_bytes,
                    used_bytes=fact.used_bytes,
                    free_bytes=fact.free_bytes,
                    file_count=fact.file_count,
                    capacity_status=fact.status.value,
                    accepting_uploads=fact.accepting_uploads,
                    capacity_as_of=fact.sent_at,
                )
            if _newer(fact.sent_at, row.get("last_heartbeat_at")):
                row["last_heartbeat_at"] = fact.sent_at
            summary = fact.fixity_last_full_pass
            last = row.get("fixity_last_full_pass") or {}
            if summary is not None and _newer(
                summary.finished_at, _parse_time(last.get("finished_at"))
            ):
                row["fixity_last_full_pass"] = summary.model_dump(mode="json")
        case ModeChanged():
            if _set_mode(row, fact.to_mode.value, fact.changed_at):
                row["last_mode_change"] = clean(fact.model_dump(mode="json"))
        case ModeChangeRejected():
            previous = row.get("last_mode_rejection") or {}
            if _newer(fact.rejected_at, _parse_time(previous.get("rejected_at"))):
                row["last_mode_rejection"] = clean(fact.model_dump(mode="json"))
        case FixityChecked():
            last = row.get("fixity_last_full_pass") or {}
            if (
                fact.complete
                and fact.scope == "element"
                and _newer(fact.finished_at, _parse_time(last.get("finished_at")))
            ):
                row["fixity_last_full_pass"] = fact.summary().model_dump(mode="json")
        case ElementFull():
            if _newer(fact.detected_at, row.get("capacity_as_of")):
                row.update(
                    free_bytes=fact.free_bytes,
                    capacity_status="full",
                    accepting_uploads=False,
                    capacity_as_of=fact.detected_at,
                    full_at=fact.detected_at,
                )
    return row


def _set_mode(row: dict[str, Any], mode: str, at: datetime) -> bool:
    if _newer(at, row.get("mode_as_of")):
        row["mode"] = mode
        row["mode_as_of"] = at
        return True
    return False


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None
