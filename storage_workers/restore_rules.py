"""Whether an ar element's worker takes a restore request: pure, unit-tested."""

from __future__ import annotations

from dataclasses import dataclass

from events import Mode, RestoreFailureReason, RestoreRequested
from storage_workers.catalogue import CatalogueEntry
from storage_workers.handlers import Caller


@dataclass(frozen=True, slots=True)
class Restore:
    """Copy the file's content out to the restore element."""

    entry: CatalogueEntry
    restore_element_id: str


@dataclass(frozen=True, slots=True)
class RefuseRestore:
    """The restore fails at once, with a reason the caller can act on."""

    reason: RestoreFailureReason
    detail: str


def decide_restore(
    command: RestoreRequested,
    *,
    element_id: str,
    mode: Mode,
    entry: CatalogueEntry | None,
    uploaded_by: str | None,
    caller: Caller,
    restore_element_id: str | None,
) -> Restore | RefuseRestore:
    """A caller may restore the files its account uploaded (an admin any); a file it may not
    restore is answered exactly as one that does not exist, so nothing is revealed."""
    if entry is None or uploaded_by is None or not caller.may_change(uploaded_by):
        return RefuseRestore(
            RestoreFailureReason.NOT_FOUND,
            f"element {element_id} holds no file {command.file_id} that {caller.client_id} may "
            "restore",
        )
    if mode is not Mode.AR:
        return RefuseRestore(
            RestoreFailureReason.NOT_ARCHIVED,
            f"element {element_id} is in mode {mode.value}: the content of file "
            f"{command.file_id} is online, download it instead",
        )
    if restore_element_id is None:
        return RefuseRestore(
            RestoreFailureReason.RESTORE_ELEMENT_UNAVAILABLE,
            f"element {element_id} has no restore element configured "
            "(ARTSTORE_STORAGE_RESTORE_ELEMENT_ID); ask an operator",
        )
    return Restore(entry, restore_element_id)
