"""An upload's status as the index and the facade report it (``GET /api/v1/uploads/{id}``).

The projector records a status from the upload command (queued) and from the outcome the
element announces (stored, rejected) or the dead-letter queue (failed). A status replaces
another only if its rank is higher, so repeated and out-of-order facts can't move an upload
back. ``deleted`` is never recorded: the facade reports it for a stored file deleted since."""

from __future__ import annotations

from enum import StrEnum


class UploadState(StrEnum):
    QUEUED = "queued"
    FAILED = "failed"
    REJECTED = "rejected"
    STORED = "stored"
    DELETED = "deleted"

    @property
    def rank(self) -> int:
        """A recorded status replaces another only if its rank is higher."""
        return UPLOAD_RANKS[self]


UPLOAD_RANKS: dict[UploadState, int] = {
    UploadState.QUEUED: 0,
    UploadState.FAILED: 1,
    UploadState.REJECTED: 2,
    UploadState.STORED: 3,
}
"""The statuses the index records, and their ranks."""

RECORDED_STATES: tuple[UploadState, ...] = tuple(UPLOAD_RANKS)
"""The statuses the index records (``deleted`` is reported, never recorded)."""

OUTCOME_FAILED: frozenset[UploadState] = frozenset({UploadState.REJECTED, UploadState.FAILED})
"""The final statuses of an upload that was not stored."""
