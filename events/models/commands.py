"""Commands: requests to a storage element's worker. Each carries the caller's JWT in a header."""

from __future__ import annotations

from typing import Annotated, Self
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from events.models.common import (
    CustomAttributes,
    ElementId,
    FreeForm,
    Mode,
    RetentionPolicy,
    Sha256Hex,
    StagedObject,
    Strict,
    Tag,
    UtcDatetime,
)

Filename = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Description = Annotated[str, StringConstraints(max_length=1000)]

DEFAULT_TTL_DAYS = 30


class UploadRequested(Strict):
    """Store the staged bytes as a new file. Routed by retention policy to an element class."""

    file_id: UUID
    original_filename: Filename
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=255)] = (
        "application/octet-stream"
    )
    file_size: int = Field(ge=0, description="Declared size in bytes; verified while streaming.")
    checksum: Sha256Hex = Field(description="Declared sha256; verified while streaming.")
    staged: StagedObject
    retention_policy: RetentionPolicy = RetentionPolicy.PERMANENT
    ttl_days: int | None = Field(None, ge=1, le=365)
    description: Description | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    metadata: FreeForm = Field(default_factory=dict)
    custom_attributes: CustomAttributes = Field(default_factory=dict)
    template: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    created_by_fullname: Annotated[str, StringConstraints(max_length=200)] | None = None
    version_of: UUID | None = Field(
        None,
        description="Store this upload as the next version of the document the named file "
        "belongs to (any version of it): a full copy with its own file id, the document's id "
        "and the next version number.",
    )
    retain_until: UtcDatetime | None = Field(
        None,
        description="Permanent files only: the end of the retention period; at it the file is "
        "deleted from an rw element unless under legal hold (docs/lifecycle.md).",
    )

    @model_validator(mode="after")
    def _ttl_matches_policy(self) -> Self:
        if self.retention_policy is RetentionPolicy.PERMANENT and self.ttl_days is not None:
            raise ValueError("ttl_days applies only to retention_policy=temporary")
        if self.retention_policy is RetentionPolicy.TEMPORARY and self.retain_until is not None:
            raise ValueError(
                "retain_until applies only to retention_policy=permanent (temporary files "
                "keep their ttl_days)"
            )
        if self.version_of is not None and self.version_of == self.file_id:
            raise ValueError("a file cannot be a version of itself")
        if self.retention_policy is RetentionPolicy.TEMPORARY and self.ttl_days is None:
            object.__setattr__(self, "ttl_days", DEFAULT_TTL_DAYS)
        return self


class UpdateMetadata(Strict):
    """Change a stored file's descriptive metadata. Omitted fields stay as they are."""

    file_id: UUID
    element_id: ElementId
    description: Description | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    metadata: FreeForm | None = None
    custom_attributes: CustomAttributes | None = None
    expected_version: int | None = Field(
        None, ge=1, description="Refuse the update unless the file is at this version."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if all(
            v is None for v in (self.description, self.tags, self.metadata, self.custom_attributes)
        ):
            raise ValueError(
                "an update must set at least one of description, tags, metadata, custom_attributes"
            )
        return self


class DeleteFile(Strict):
    """Delete a file from an edit element (rw, ro and ar elements refuse)."""

    file_id: UUID
    element_id: ElementId
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ChangeMode(Strict):
    """Move an element to another mode. ro -> rw needs ``confirm=True``."""

    element_id: ElementId
    target_mode: Mode
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    confirm: bool = False


HoldReason = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class PlaceLegalHold(Strict):
    """Put a file under legal hold: nothing deletes it (request, TTL or retention expiry)
    until the hold is released. Needs scope ``files:hold``; allowed in every element mode."""

    file_id: UUID
    element_id: ElementId
    reason: HoldReason


class ReleaseLegalHold(Strict):
    """Lift a file's legal hold. Needs scope ``files:hold``."""

    file_id: UUID
    element_id: ElementId
    reason: HoldReason
