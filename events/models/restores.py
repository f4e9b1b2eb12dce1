"""Restore on request: a file of an ``ar`` element copied into the restore element for a while.

The command ``RestoreRequested`` goes to the ``ar`` element's worker on
``artstore.element-commands`` (key: that element's id). Every fact about one restore carries
``restore_id``, ``file_id`` and ``requested_by`` (the requesting account's client id), is
announced on ``artstore.files`` (key: the file id) and moves the restore along
``queued -> in_progress -> restored -> expired``, or to ``failed`` with a reason.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, Field

from events.models.common import ElementId, Sha256Hex, StagedObject, Strict

DEFAULT_RESTORE_DAYS = 30
"""How long a restored copy is kept unless the deployment says otherwise."""
DEFAULT_RESTORE_WARNING = timedelta(days=3)
"""How long before its expiry a restored copy is announced as expiring."""


class RestoreStatus(StrEnum):
    """Where a restore stands, as the index and the facade report it."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    RESTORED = "restored"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def pending(self) -> bool:
        """A request for the same file made now joins this restore."""
        return self in (RestoreStatus.QUEUED, RestoreStatus.IN_PROGRESS, RestoreStatus.RESTORED)


RESTORE_RANK = {
    RestoreStatus.QUEUED: 0,
    RestoreStatus.IN_PROGRESS: 1,
    RestoreStatus.RESTORED: 2,
    RestoreStatus.EXPIRED: 3,
    RestoreStatus.FAILED: 3,
}
"""A restore's status only climbs: a late fact never moves it back."""


class RestoreFailureReason(StrEnum):
    """Why a restore failed."""

    NOT_FOUND = "not_found"
    """No such file on the element, or not the caller's (the two are not told apart)."""
    NOT_ARCHIVED = "not_archived"
    COLD_COPY_MISSING = "cold_copy_missing"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    RESTORE_ELEMENT_UNAVAILABLE = "restore_element_unavailable"
    REFUSED = "refused"
    """The request's token was refused (invalid, expired, without scope files:read)."""


class RestoreRequested(Strict):
    """Copy an archived file's content into the restore element for a while."""

    restore_id: UUID
    file_id: UUID
    element_id: ElementId = Field(description="The ar element that holds the file.")
    requested_by: str = Field(max_length=200)
    requested_at: AwareDatetime


class _RestoreFact(Strict):
    restore_id: UUID
    file_id: UUID
    requested_by: str = Field(max_length=200)
    element_id: ElementId = Field(description="The ar element that holds the file.")


class RestoreStarted(_RestoreFact):
    """The ar element's worker began copying the content out of its cold tier."""

    started_at: AwareDatetime


class FileRestored(_RestoreFact):
    """A verified copy of the content is in the restore element until ``expires_at``;
    downloads of the file are served from it."""

    restore_element_id: ElementId
    storage_path: str = Field(max_length=1024)
    checksum: Sha256Hex
    restored_at: AwareDatetime
    expires_at: AwareDatetime


class RestoreExpiring(_RestoreFact):
    """The restored copy will be removed at ``expires_at``."""

    restore_element_id: ElementId
    expires_at: AwareDatetime
    warned_at: AwareDatetime


class RestoreExpired(_RestoreFact):
    """The restored copy was removed; the content is on the cold tier only again."""

    restore_element_id: ElementId
    expired_at: AwareDatetime


class RestoreFailed(_RestoreFact):
    """The restore could not be done; ``reason`` and ``detail`` say why."""

    reason: RestoreFailureReason
    detail: str = Field(max_length=2000)
    failed_at: AwareDatetime


class RestoreStaged(_RestoreFact):
    """The hand-over between two single writers: the ar element's worker staged a verified copy
    of the content, and asks the restore element's worker to keep it (internal: on
    ``artstore.restores``, key: the restore element, written by storage workers only)."""

    restore_element_id: ElementId
    staged: StagedObject
    file_size: int = Field(ge=0)
    checksum: Sha256Hex
    original_filename: str = Field(max_length=1024)
    content_type: str = Field(max_length=255)
    staged_at: AwareDatetime
