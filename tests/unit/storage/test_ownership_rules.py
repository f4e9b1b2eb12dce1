"""Ownership decisions (SPEC §3): a `user` changes only its own files, an admin any."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events import DeleteFile, Mode, RejectionReason, UpdateMetadata
from storage_workers.capacity import DEFAULT_FLOORS, measure
from storage_workers.catalogue import CatalogueEntry
from storage_workers.handlers import (
    Caller,
    ElementView,
    Reject,
    Remove,
    Rewrite,
    decide_delete,
    decide_update,
)
from storage_workers.sidecar import Templates
from tests.factories import stored_sidecar

OWNER = "sa_dev_owner_00000000"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SIDECAR = stored_sidecar(b"x", element_id="se-01", created_by_id=OWNER)
ELEMENT = ElementView(
    "se-01",
    Mode.EDIT,
    measure(
        capacity_bytes=10**12, used_bytes=0, storage_free=10**12, floors=DEFAULT_FLOORS[Mode.EDIT]
    ),
    Templates({}),
)

CALLERS = [
    (Caller(OWNER, "owner", "user"), True),
    (Caller("sa_dev_other_11111111", "other", "user"), False),
    (Caller("sa_dev_other_11111111", "other", "readonly"), False),
    (Caller("sa_dev_admin_22222222", "admin", "admin"), True),
]


@pytest.mark.parametrize(("caller", "allowed"), CALLERS)
def test_update(caller: Caller, allowed: bool) -> None:
    command = UpdateMetadata(file_id=SIDECAR.file_id, element_id="se-01", description="d")
    decision = decide_update(
        command, element=ELEMENT, current=SIDECAR, command_id="c1", caller=caller, now=NOW
    )
    if allowed:
        assert isinstance(decision, Rewrite)
    else:
        assert decision == Reject(RejectionReason.NOT_OWNER, decision.detail)  # type: ignore[union-attr]


@pytest.mark.parametrize(("caller", "allowed"), CALLERS)
def test_delete(caller: Caller, allowed: bool) -> None:
    command = DeleteFile(file_id=SIDECAR.file_id, element_id="se-01")
    decision = decide_delete(
        command,
        element=ELEMENT,
        current=CatalogueEntry.of(SIDECAR),
        uploaded_by=OWNER,
        deleted=False,
        caller=caller,
    )
    assert isinstance(decision, Remove) is allowed
    if not allowed:
        assert isinstance(decision, Reject)
        assert decision.reason is RejectionReason.NOT_OWNER


def test_a_file_whose_uploader_cannot_be_read_is_deleted_only_by_an_admin() -> None:
    command = DeleteFile(file_id=SIDECAR.file_id, element_id="se-01")
    entry = CatalogueEntry.of(SIDECAR)
    for caller, expected in ((CALLERS[0][0], Reject), (CALLERS[3][0], Remove)):
        decision = decide_delete(
            command, element=ELEMENT, current=entry, uploaded_by=None, deleted=False, caller=caller
        )
        assert isinstance(decision, expected)
