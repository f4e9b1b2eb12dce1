"""Audit facts (``artstore.audit.recorded.v1``): the one builder, and what each fact audits.

Every producer builds its audit events with :func:`audit_event`. The storage worker does not
write audit events by hand: :func:`audit_of_fact` reads the fact it is about to announce and
returns the audit event that goes out in the same publish, so one cannot leave without the
other. The audit event's id is derived from what the fact records (the file and checksum
stored, the version written, the file deleted; else the fact's own id): a change announced again
(after a crash, a redelivered command answered from the sidecar, another element finding it
stored) carries the same audit id, and the projector keeps one entry.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from events.envelope import Envelope
from events.models.audit import AuditRecorded
from events.models.elements import ModeChanged, ModeChangeRejected
from events.models.files import (
    ExpiryHeld,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    LegalHoldChanged,
    MetadataUpdated,
    UploadRejected,
)
from events.models.restores import (
    FileRestored,
    RestoreExpired,
    RestoreFailed,
    RestoreStarted,
)
from events.registry import new_event

Outcome = Literal["success", "failure"]
_AUDIT_OF = uuid.UUID("6f1d7d2e-58a4-4c0e-9a55-2b1d1c3f0a17")
_COMMAND_ACTION = {
    "update_metadata": "file.metadata_update_refused",
    "delete_file": "file.delete_refused",
    "place_legal_hold": "file.legal_hold_refused",
    "release_legal_hold": "file.legal_hold_release_refused",
}


def audit_event(
    action: str,
    *,
    subject: str,
    source: str,
    outcome: Outcome = "success",
    actor: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> Envelope[AuditRecorded]:
    """The audit event saying ``actor`` did ``action`` to ``subject`` with ``outcome``.

    ``details`` never holds a secret or a token. ``correlation_id`` ties the entry to the
    request or command it answers (a new chain starts when there is none).
    """
    at = time or datetime.now(UTC)
    payload = AuditRecorded(
        action=action,
        actor=actor,
        subject=subject[:200],
        outcome=outcome,
        reason=None if reason is None else reason[:2000],
        details=details or {},
        occurred_at=at,
    )
    return new_event(
        payload, source=source, correlation_id=correlation_id, time=at, event_id=event_id
    )


def audit_of_fact(
    fact: Envelope[Any], *, actor: str | None = None
) -> Envelope[AuditRecorded] | None:
    """The audit event for a fact that records a change or a refused one, else None.

    ``actor`` is the verified caller whose command the fact answers; facts that name who acted
    (``updated_by``, ``deleted_by``, ``changed_by``, ``created_by_id``) name it themselves.
    """
    entry = _entry_of(fact.data, actor)
    if entry is None:
        return None
    action, subject, outcome, who, reason, details = entry
    return audit_event(
        action,
        subject=subject,
        source=fact.source,
        outcome=outcome,
        actor=who,
        reason=reason,
        details=details,
        correlation_id=fact.correlation_id,
        time=fact.time,
        event_id=str(uuid.uuid5(_AUDIT_OF, _once_key(fact))),
    )


def _once_key(fact: Envelope[Any]) -> str:
    """What makes two announcements the same change: a stored file is stored once, a version
    is written once, a file is deleted once; anything else is its own fact."""
    match fact.data:
        case FileStored(file=f):
            return f"stored:{f.file_id}:{f.checksum}"
        case MetadataUpdated(file=f) | LegalHoldChanged(file=f):
            return f"updated:{f.file_id}:{f.version}"
        case ExpiryHeld():
            return f"expiry-held:{fact.data.file_id}:{fact.data.hold.placed_at.isoformat()}"
        case FileDeleted():
            return f"deleted:{fact.data.file_id}"
        case RestoreStarted() | FileRestored() | RestoreExpired() | RestoreFailed():
            return f"{type(fact.data).__name__}:{fact.data.restore_id}"
    return f"fact:{fact.id}"


_Entry = tuple[str, str, Outcome, str | None, str | None, dict[str, Any]]


def _entry_of(data: Any, actor: str | None) -> _Entry | None:
    match data:
        case FileStored(file=f):
            details = {"element_id": f.element_id, "file_size": f.file_size, "checksum": f.checksum}
            return "upload.stored", str(f.file_id), "success", f.created_by_id, None, details
        case UploadRejected():
            details = {"error": data.reason.value, "element_id": data.element_id}
            return "upload.refused", str(data.file_id), "failure", actor, data.detail, details
        case MetadataUpdated(file=f):
            details = {"element_id": f.element_id, "version": f.version}
            return (
                "file.metadata_updated",
                str(f.file_id),
                "success",
                data.updated_by,
                None,
                details,
            )
        case LegalHoldChanged(file=f):
            details = {"element_id": f.element_id, "version": f.version}
            action = "file.legal_hold_placed" if data.held else "file.legal_hold_released"
            return action, str(f.file_id), "success", data.changed_by, data.reason, details
        case ExpiryHeld():
            details = {
                "element_id": data.element_id,
                "why": data.expiry.value,
                "due_at": data.due_at.isoformat(),
                "error": "legal_hold",
                "hold_placed_by": data.hold.placed_by,
            }
            return (
                "file.expiry_refused",
                str(data.file_id),
                "failure",
                f"storage:{data.element_id}",
                f"under legal hold: {data.hold.reason}",
                details,
            )
        case FileDeleted():
            details = {"element_id": data.element_id, "why": data.reason.value}
            return "file.deleted", str(data.file_id), "success", data.deleted_by, None, details
        case FileCommandRejected():
            details = {"error": data.reason.value, "element_id": data.element_id}
            action = _COMMAND_ACTION[data.command]
            return action, str(data.file_id), "failure", actor, data.detail, details
        case ModeChanged():
            details = {"from_mode": data.from_mode.value, "to_mode": data.to_mode.value}
            return (
                "element.mode_changed",
                data.element_id,
                "success",
                data.changed_by,
                data.reason,
                details,
            )
        case RestoreStarted():
            details = {"restore_id": str(data.restore_id), "element_id": data.element_id}
            subject = str(data.file_id)
            return "file.restore_started", subject, "success", data.requested_by, None, details
        case FileRestored():
            details = {
                "restore_id": str(data.restore_id),
                "restore_element_id": data.restore_element_id,
                "expires_at": data.expires_at.isoformat(),
            }
            return "file.restored", str(data.file_id), "success", data.requested_by, None, details
        case RestoreExpired():
            details = {"restore_id": str(data.restore_id)}
            subject = str(data.file_id)
            return "file.restore_expired", subject, "success", data.requested_by, None, details
        case RestoreFailed():
            details = {"restore_id": str(data.restore_id), "error": data.reason.value}
            return (
                "file.restore_failed",
                str(data.file_id),
                "failure",
                data.requested_by,
                data.detail,
                details,
            )
        case ModeChangeRejected():
            details = {
                "current_mode": data.current_mode.value,
                "requested_mode": data.requested_mode.value,
                "allowed": [m.value for m in data.allowed],
            }
            return (
                "element.mode_change_refused",
                data.element_id,
                "failure",
                actor,
                data.reason,
                details,
            )
    return None
