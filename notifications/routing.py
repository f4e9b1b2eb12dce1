"""Which facts become notifications, of which kind, for whose account: one table.

A row names a fact by its model's class name (``FileStored``), so a fact whose model another
part of the code adds later is routed as soon as it is registered in ``events.registry``, with
no change here; a row for a model not (yet) registered simply never matches. Each row says:

- ``kind``: what a webhook subscribes to (``upload.stored``);
- ``owner``: the dotted path of the payload field holding the client id of the account the
  event belongs to (``file.created_by_id``); a fact whose owner is empty notifies nobody;
- ``once``: what makes two announcements of the fact the same event, so that a fact announced
  again (a worker re-announces a stored file on redelivery) is one delivery per webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class NotificationKind(StrEnum):
    """What an account may subscribe a webhook to."""

    UPLOAD_STORED = "upload.stored"
    UPLOAD_REJECTED = "upload.rejected"
    RESTORE_STARTED = "restore.started"
    RESTORE_COMPLETED = "restore.completed"
    RESTORE_EXPIRING = "restore.expiring"
    RESTORE_FAILED = "restore.failed"


def _path(payload: Any, dotted: str) -> Any:
    value = payload
    for name in dotted.split("."):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


@dataclass(frozen=True)
class Route:
    """How one fact model becomes a notification."""

    kind: NotificationKind
    owner: str
    once: Callable[[Any, str], str]
    """(payload, event id) -> the fact's identity across re-announcements."""

    def owner_of(self, payload: Any) -> str | None:
        """The client id the event belongs to, or None."""
        value = _path(payload, self.owner)
        return str(value) if value else None


def _stored_once(payload: Any, _event_id: str) -> str:
    return f"stored:{payload.file.file_id}:{payload.file.checksum}"


def _rejected_once(payload: Any, _event_id: str) -> str:
    return f"rejected:{payload.file_id}:{payload.reason}"


def _restore_once(step: str) -> Callable[[Any, str], str]:
    return lambda payload, _event_id: f"{step}:{payload.restore_id}"


ROUTES: Mapping[str, Route] = {
    "FileStored": Route(NotificationKind.UPLOAD_STORED, "file.created_by_id", _stored_once),
    "UploadRejected": Route(NotificationKind.UPLOAD_REJECTED, "requested_by", _rejected_once),
    # Restores: announced by the element's worker with restore_id, file_id and requested_by.
    "RestoreStarted": Route(
        NotificationKind.RESTORE_STARTED, "requested_by", _restore_once("started")
    ),
    "FileRestored": Route(
        NotificationKind.RESTORE_COMPLETED, "requested_by", _restore_once("restored")
    ),
    "RestoreExpiring": Route(
        NotificationKind.RESTORE_EXPIRING, "requested_by", _restore_once("expiring")
    ),
    "RestoreFailed": Route(
        NotificationKind.RESTORE_FAILED, "requested_by", _restore_once("failed")
    ),
}

_DELIVERY = uuid.UUID("3f0c7a52-55d2-4c2e-9a51-4f1f6b0a7e19")


def delivery_id(webhook_id: uuid.UUID, once: str) -> uuid.UUID:
    """The delivery of one event to one webhook: the same however often the fact is read."""
    return uuid.uuid5(_DELIVERY, f"{webhook_id}:{once}")
