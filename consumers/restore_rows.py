"""A restore's row after one of its facts (or the facade's "queued"). Pure."""

from __future__ import annotations

from datetime import datetime

from consumers.changes import RestoreStep
from consumers.file_rows import clean
from events import (
    RESTORE_RANK,
    FileRestored,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreRequested,
    RestoreStarted,
    RestoreStatus,
)

RestoreFact = RestoreStarted | FileRestored | RestoreExpiring | RestoreExpired | RestoreFailed


def _step(status: RestoreStatus, at: datetime, fact: RestoreFact, **known: object) -> RestoreStep:
    return RestoreStep(
        restore_id=fact.restore_id,
        file_id=fact.file_id,
        status=status.value,
        rank=RESTORE_RANK[status],
        status_at=at,
        element_id=fact.element_id,
        requested_by=clean(fact.requested_by),
        **known,  # type: ignore[arg-type]
    )


def restore_step(fact: RestoreFact) -> RestoreStep:
    """The row change a restore fact asks for."""
    match fact:
        case RestoreStarted():
            return _step(RestoreStatus.IN_PROGRESS, fact.started_at, fact)
        case FileRestored():
            return _step(
                RestoreStatus.RESTORED,
                fact.restored_at,
                fact,
                restore_element_id=fact.restore_element_id,
                storage_path=clean(fact.storage_path),
                checksum=fact.checksum,
                expires_at=fact.expires_at,
            )
        case RestoreExpiring():
            # Still restored: the warning is noted, the status does not move.
            return _step(
                RestoreStatus.RESTORED,
                fact.warned_at,
                fact,
                restore_element_id=fact.restore_element_id,
                expires_at=fact.expires_at,
                warned_at=fact.warned_at,
            )
        case RestoreExpired():
            return _step(
                RestoreStatus.EXPIRED,
                fact.expired_at,
                fact,
                restore_element_id=fact.restore_element_id,
            )
        case RestoreFailed():
            return _step(
                RestoreStatus.FAILED,
                fact.failed_at,
                fact,
                reason=fact.reason.value,
                detail=clean(fact.detail),
            )


def queued_restore(command: RestoreRequested) -> RestoreStep:
    """What the facade records as soon as it queued a restore request."""
    return RestoreStep(
        restore_id=command.restore_id,
        file_id=command.file_id,
        status=RestoreStatus.QUEUED.value,
        rank=RESTORE_RANK[RestoreStatus.QUEUED],
        status_at=command.requested_at,
        element_id=command.element_id,
        requested_by=command.requested_by,
        requested_at=command.requested_at,
    )
