"""Who may restore what, decided before anything is read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events import Mode, RestoreFailureReason, RestoreRequested
from storage_workers.catalogue import CatalogueEntry
from storage_workers.handlers import Caller
from storage_workers.restore_rules import RefuseRestore, Restore, decide_restore
from storage_workers.restores import staged_name
from tests.factories import stored_sidecar

OWNER = Caller("sa_test_owner_1", "owner", "user")


def decide(
    *,
    caller: Caller = OWNER,
    mode: Mode = Mode.AR,
    known: bool = True,
    restore_element_id: str | None = "se-restore",
) -> Restore | RefuseRestore:
    sidecar = stored_sidecar(b"x", element_id="se-03", created_by_id=OWNER.client_id)
    command = RestoreRequested(
        restore_id=uuid.uuid4(),
        file_id=sidecar.file_id,
        element_id="se-03",
        requested_by=caller.client_id,
        requested_at=datetime.now(UTC),
    )
    return decide_restore(
        command,
        element_id="se-03",
        mode=mode,
        entry=CatalogueEntry.of(sidecar) if known else None,
        uploaded_by=sidecar.created_by_id if known else None,
        caller=caller,
        restore_element_id=restore_element_id,
    )


def test_the_uploader_and_an_admin_may_restore_an_archived_file() -> None:
    assert isinstance(decide(), Restore)
    assert isinstance(decide(caller=Caller("sa_test_admin_1", "admin", "admin")), Restore)


def test_another_account_gets_the_answer_an_unknown_file_gets() -> None:
    other = decide(caller=Caller("sa_test_other_1", "other", "user"))
    unknown = decide(known=False)
    assert isinstance(other, RefuseRestore)
    assert isinstance(unknown, RefuseRestore)
    assert other.reason is unknown.reason is RestoreFailureReason.NOT_FOUND


def test_a_file_whose_content_is_online_is_not_restored() -> None:
    refused = decide(mode=Mode.RO)
    assert isinstance(refused, RefuseRestore)
    assert refused.reason is RestoreFailureReason.NOT_ARCHIVED
    assert "download it instead" in refused.detail


def test_without_a_restore_element_the_request_fails_with_the_setting_to_change() -> None:
    refused = decide(restore_element_id=None)
    assert isinstance(refused, RefuseRestore)
    assert refused.reason is RestoreFailureReason.RESTORE_ELEMENT_UNAVAILABLE
    assert "ARTSTORE_STORAGE_RESTORE_ELEMENT_ID" in refused.detail


def test_a_chosen_restore_id_never_names_anothers_copy_in_transit() -> None:
    chosen = uuid.uuid4()
    mine = RestoreRequested(
        restore_id=chosen,
        file_id=uuid.uuid4(),
        element_id="se-03",
        requested_by=OWNER.client_id,
        requested_at=datetime.now(UTC),
    )
    same_id_other_file = mine.model_copy(update={"file_id": uuid.uuid4()})
    same_id_other_asker = mine.model_copy(update={"requested_by": "sa_test_other_1"})
    redelivered = mine.model_copy(update={"requested_at": datetime.now(UTC)})
    names = {staged_name(c) for c in (mine, same_id_other_file, same_id_other_asker)}
    assert len(names) == 3
    assert staged_name(redelivered) == staged_name(mine)
    assert staged_name(mine).startswith(str(chosen))
