"""Facts about files, announced by the element's worker on ``artstore.files``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from events.models.common import (
    CustomAttributes,
    ElementId,
    FreeForm,
    RetentionPolicy,
    Sha256Hex,
    Strict,
    UtcDatetime,
)


class LegalHold(Strict):
    """A legal hold on a file, as its sidecar records it."""

    reason: str
    placed_by: str
    placed_at: AwareDatetime


class FileRecord(Strict):
    """Everything the sidecar (attr.json v2) says about a file, as announced in facts."""

    file_id: UUID
    element_id: ElementId
    original_filename: str
    storage_filename: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    storage_path: str = Field(description="Path of the data file relative to the element root.")
    file_size: int = Field(ge=0)
    content_type: str
    checksum: Sha256Hex
    created_at: AwareDatetime
    updated_at: AwareDatetime
    created_by_id: str
    created_by_username: str
    created_by_fullname: str | None = None
    description: str | None = None
    version: int = Field(ge=1, description="Starts at 1, +1 per metadata update.")
    retention_policy: RetentionPolicy
    ttl_expires_at: AwareDatetime | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: FreeForm = Field(default_factory=dict)
    custom_attributes: CustomAttributes = Field(default_factory=dict)
    document_id: UUID | None = Field(
        None,
        description="The document this file is a version of: the file id of its first version "
        "(None in facts from before versions: the file is its own document, version 1).",
    )
    document_version: int | None = Field(
        None, ge=1, description="The file's version of its document (None: 1)."
    )
    retain_until: UtcDatetime | None = None
    legal_hold: LegalHold | None = None

    @property
    def document(self) -> UUID:
        """The document id, for facts from before versions too."""
        return self.document_id or self.file_id

    @property
    def document_number(self) -> int:
        """The version number, for facts from before versions too."""
        return self.document_version or 1


class FileStored(Strict):
    """A file and its sidecar are durable on an element."""

    file: FileRecord


class MetadataUpdated(Strict):
    """A file's sidecar was rewritten; ``file`` is the whole new state at ``file.version``."""

    file: FileRecord
    updated_by: str


class DeletionReason(StrEnum):
    """Why a file left its element."""

    REQUESTED = "requested"
    TTL_EXPIRED = "ttl_expired"
    RETENTION_EXPIRED = "retention_expired"


class FileDeleted(Strict):
    """A file and its sidecar were removed from an element."""

    file_id: UUID
    element_id: ElementId
    storage_path: str
    reason: DeletionReason
    deleted_by: str
    deleted_at: AwareDatetime


class RejectionReason(StrEnum):
    """Why a command could never succeed. Each value is documented in docs/rejections.md."""

    INVALID_PAYLOAD = "invalid_payload"
    INVALID_TOKEN = "invalid_token"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    COMMAND_TOO_OLD = "command_too_old"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    SIZE_MISMATCH = "size_mismatch"
    STAGED_OBJECT_MISSING = "staged_object_missing"
    INVALID_CLAIM_CHECK = "invalid_claim_check"
    NOT_OWNER = "not_owner"
    ELEMENT_MODE = "element_mode"
    ELEMENT_FULL = "element_full"
    TEMPLATE_VIOLATION = "template_violation"
    SIDECAR_TOO_LARGE = "sidecar_too_large"
    FILE_NOT_FOUND = "file_not_found"
    VERSION_CONFLICT = "version_conflict"
    DUPLICATE_FILE_ID = "duplicate_file_id"
    UNKNOWN_DOCUMENT = "unknown_document"
    DOCUMENT_DELETED = "document_deleted"
    LEGAL_HOLD = "legal_hold"
    NOT_HELD = "not_held"


class UploadRejected(Strict):
    """An upload command that can never succeed; the partition moved on."""

    file_id: UUID
    element_id: ElementId | None = None
    reason: RejectionReason
    detail: str
    rejected_at: AwareDatetime
    requested_by: str | None = Field(
        None,
        description="Client id of the account whose verified command was rejected; None when "
        "the command's token could not be verified (nobody is told then).",
    )


class FileCommandRejected(Strict):
    """An UpdateMetadata or DeleteFile command that can never succeed."""

    file_id: UUID
    element_id: ElementId
    command: Literal["update_metadata", "delete_file", "place_legal_hold", "release_legal_hold"]
    reason: RejectionReason
    detail: str
    rejected_at: AwareDatetime


class FixityFailedV1(Strict):
    """The first fixity fact (``artstore.file.fixity-failed.v1``), still read; superseded by
    :class:`events.models.fixity.FixityFailed` (v2: kind, sizes, pass and PREMIS fields)."""

    file_id: UUID
    element_id: ElementId
    storage_path: str
    expected_checksum: Sha256Hex
    actual_checksum: Sha256Hex | None = Field(None, description="None when the file is missing.")
    detail: str
    detected_at: AwareDatetime


class LegalHoldChanged(Strict):
    """A file's legal hold was placed (``held``) or released; ``file`` is its whole new state
    (the sidecar was rewritten at ``file.version``)."""

    file: FileRecord
    held: bool
    reason: str
    changed_by: str


class ExpiryHeld(Strict):
    """A file's TTL or retention period is over, but a legal hold keeps it: announced once per
    hold and worker start while the file is due (the sweep keeps trying each round)."""

    file_id: UUID
    element_id: ElementId
    expiry: DeletionReason
    due_at: AwareDatetime
    hold: LegalHold
    noticed_at: AwareDatetime
