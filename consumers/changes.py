"""Row changes the projection's handlers decide on, and the store applies in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from events import (
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    FixityChecked,
    ModeChanged,
    ModeChangeRejected,
)

ElementFact = (
    ElementRegistered
    | ElementHeartbeat
    | ModeChanged
    | ModeChangeRejected
    | ElementFull
    | FixityChecked
)


class FileRow(NamedTuple):
    """One row of ``files`` as a fact describes it (``search_vector`` is computed by PostgreSQL).

    A named tuple in column order: the projection builds one per fact, and a tuple is both the
    cheapest immutable value to build and what a COPY takes as a record.
    """

    file_id: UUID
    element_id: str
    original_filename: str
    storage_filename: str
    storage_path: str
    extension: str
    file_size: int
    content_type: str
    checksum: str
    created_at: datetime
    updated_at: datetime
    created_by_id: str
    created_by_username: str
    created_by_fullname: str | None
    description: str | None
    version: int
    retention_policy: str
    ttl_expires_at: datetime | None
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    custom_attributes: dict[str, Any]
    language: str
    search_extra: str
    document_id: UUID
    document_version: int
    retain_until: datetime | None
    legal_hold: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class UpsertFile:
    """Insert the file, or replace it if this state is newer (version, then updated_at)."""

    row: FileRow

    @property
    def key(self) -> UUID:
        return self.row.file_id


@dataclass(frozen=True, slots=True)
class MarkFileDeleted:
    """Tombstone the file: it stays as a row so an older fact can never bring it back."""

    file_id: UUID
    deleted_at: datetime
    deleted_by: str
    reason: str

    @property
    def key(self) -> UUID:
        return self.file_id


@dataclass(frozen=True, slots=True)
class NoteFileProblem:
    """Remember the newest fixity failure or command rejection on the file's row."""

    file_id: UUID
    column: str  # "fixity" | "fixity_failure" | "last_rejection"
    at: datetime
    details: dict[str, Any]

    @property
    def key(self) -> UUID:
        return self.file_id


@dataclass(frozen=True, slots=True)
class RecordFixityFinding:
    """Keep a FixityFailed finding (by event id: a repeated record is a no-op)."""

    event_id: str
    element_id: str
    file_id: UUID | None
    storage_path: str
    kind: str
    pass_id: str | None
    detected_at: datetime
    fact: dict[str, Any]

    @property
    def key(self) -> str:
        return self.event_id


@dataclass(frozen=True, slots=True)
class RecordFixityPass:
    """Keep a pass (FixityChecked); its sound files' last check moves to its end."""

    pass_id: str
    element_id: str
    scope: str
    file_id: UUID | None
    complete: bool
    started_at: datetime
    finished_at: datetime
    checked: int
    sound: int
    failed: int
    unreadable: int
    bytes_checked: int
    findings: dict[str, int]
    fact: dict[str, Any]

    @property
    def key(self) -> str:
        return self.pass_id


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """A step in an upload's life; a step of higher rank replaces a lower one, never the reverse."""

    file_id: UUID
    status: str
    rank: int
    status_at: datetime
    reason: str | None = None
    detail: str | None = None
    element_id: str | None = None
    original_filename: str | None = None
    content_type: str | None = None
    file_size: int | None = None
    checksum: str | None = None
    retention_policy: str | None = None
    requested_at: datetime | None = None
    correlation_id: str | None = None

    @property
    def key(self) -> UUID:
        return self.file_id


@dataclass(frozen=True, slots=True)
class RestoreStep:
    """A step in a restore's life; a higher rank replaces a lower one, never the reverse, and
    what a step knows (where the copy is, when it expires, the warning) is kept."""

    restore_id: UUID
    file_id: UUID
    status: str
    rank: int
    status_at: datetime
    element_id: str | None = None
    requested_by: str | None = None
    reason: str | None = None
    detail: str | None = None
    restore_element_id: str | None = None
    storage_path: str | None = None
    checksum: str | None = None
    expires_at: datetime | None = None
    warned_at: datetime | None = None
    requested_at: datetime | None = None

    @property
    def key(self) -> UUID:
        return self.restore_id


@dataclass(frozen=True, slots=True)
class ApplyElementFact:
    """Fold a fact into the element's row (see :func:`consumers.handlers.merge_element`)."""

    element_id: str
    fact: ElementFact

    @property
    def key(self) -> str:
        return self.element_id


@dataclass(frozen=True, slots=True)
class AppendAudit:
    """Append an audit entry; the event id makes a repeated record a no-op."""

    event_id: str
    occurred_at: datetime
    action: str
    actor: str | None
    subject: str
    outcome: str
    reason: str | None
    details: dict[str, Any]
    source: str
    correlation_id: str

    @property
    def key(self) -> str:
        return self.event_id


Change = (
    UpsertFile
    | MarkFileDeleted
    | NoteFileProblem
    | UploadStatus
    | ApplyElementFact
    | AppendAudit
    | RecordFixityFinding
    | RecordFixityPass
    | RestoreStep
)
