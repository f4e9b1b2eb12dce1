"""Legal holds: placing and releasing one on a stored file (pure decisions), and keeping held
files through every expiry.

A hold lives in the file's sidecar (``legal_hold``: reason, who, when), so it survives a
rebuild of the index and is enforced by the element that holds the file. Placing or releasing
it is a sidecar rewrite through the journal, like a metadata update, and is allowed in every
mode: a hold must be placeable on an archived document, so it is the one change a frozen (ro,
ar) element's sidecars accept. See docs/lifecycle.md, "Retention and legal hold".
"""

from __future__ import annotations

from datetime import datetime

from events import LegalHold, PlaceLegalHold, RejectionReason, ReleaseLegalHold
from storage_workers.handlers import AlreadyDone, Caller, ElementView, Reject, Rewrite
from storage_workers.sidecar import Sidecar, SidecarError, SidecarTooLarge

HoldCommand = PlaceLegalHold | ReleaseLegalHold


def decide_hold(
    command: HoldCommand,
    *,
    element: ElementView,
    current: Sidecar | None,
    command_id: str,
    caller: Caller,
    now: datetime,
) -> Rewrite | AlreadyDone | Reject:
    """The sidecar after a hold is placed or released, or why not. The scope ``files:hold``
    was checked at admission; ownership does not matter (a hold is an admin's act)."""
    if current is None:
        return Reject(
            RejectionReason.FILE_NOT_FOUND,
            f"file {command.file_id} is not on element {element.element_id}",
        )
    if current.extras.get("last_command_id") == command_id:
        return AlreadyDone()
    if isinstance(command, ReleaseLegalHold) and current.legal_hold is None:
        return Reject(RejectionReason.NOT_HELD, f"file {command.file_id} is not under legal hold")
    reason = command.reason
    while True:
        hold = (
            None
            if isinstance(command, ReleaseLegalHold)
            else LegalHold(reason=reason, placed_by=caller.client_id, placed_at=now)
        )
        try:
            updated = current.replace(
                legal_hold=hold,
                version=current.version + 1,
                updated_at=now,
                last_command_id=command_id,
            )
            return Rewrite(updated, updated.encode(hold_room=False))
        except SidecarTooLarge as exc:
            if hold is None or not reason:
                return Reject(RejectionReason.SIDECAR_TOO_LARGE, str(exc))
            # Every sidecar keeps room for a hold, not for any reason: a long one is cut in
            # the sidecar (the fact and the audit keep it whole).
            keep = max(0, len(reason) - (exc.size - exc.limit) - len(_CUT))
            reason = reason[:keep] + _CUT if keep else ""
        except (SidecarError, ValueError) as exc:
            return Reject(RejectionReason.INVALID_PAYLOAD, str(exc))


_CUT = "…"


class HeldExpiries:
    """Which held files' expiry was already announced as refused (``ExpiryHeld``), so the
    sweep announces each once per hold while the worker runs, not every round (a restart
    announces it once more)."""

    def __init__(self) -> None:
        self._announced: set[tuple[str, datetime]] = set()

    def first_time(self, file_id: object, hold_placed_at: datetime) -> bool:
        """True the first time a file held since ``hold_placed_at`` is found due."""
        key = (str(file_id), hold_placed_at)
        if key in self._announced:
            return False
        self._announced.add(key)
        return True
