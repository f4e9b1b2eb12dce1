"""What each fact audits: action, actor, subject, outcome, reason and correlation id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events import (
    FileCommandRejected,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    Mode,
    ModeChanged,
    ModeChangeRejected,
    RejectionReason,
    UploadRejected,
    audit_of_fact,
    new_event,
)
from events.models.files import DeletionReason
from tests.factories import file_record

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FILE = uuid.uuid4()


def test_a_stored_file_is_audited_as_its_uploader_with_the_command_correlation() -> None:
    record = file_record(FILE, created_by_id="sa_dev_alice_00000001")
    fact = new_event(FileStored(file=record), source="se-01", correlation_id="cmd-1")
    audit = audit_of_fact(fact)
    assert audit is not None
    assert (audit.data.action, audit.data.actor, audit.data.subject, audit.data.outcome) == (
        "upload.stored",
        "sa_dev_alice_00000001",
        str(FILE),
        "success",
    )
    assert audit.correlation_id == "cmd-1"
    assert audit.subject == str(FILE)


def test_announcing_the_same_stored_file_again_gives_the_same_audit_id() -> None:
    record = file_record(FILE)
    first = audit_of_fact(new_event(FileStored(file=record), source="se-01"))
    again = audit_of_fact(new_event(FileStored(file=record), source="se-02"))
    assert first is not None
    assert again is not None
    assert first.id == again.id


def test_refusals_carry_the_caller_and_say_why() -> None:
    rejected = UploadRejected(
        file_id=FILE,
        element_id="se-01",
        reason=RejectionReason.ELEMENT_MODE,
        detail="element se-01 is read-only",
        rejected_at=NOW,
    )
    audit = audit_of_fact(new_event(rejected, source="se-01"), actor="sa_dev_bob_00000002")
    assert audit is not None
    assert audit.data.action == "upload.refused"
    assert audit.data.outcome == "failure"
    assert audit.data.actor == "sa_dev_bob_00000002"
    assert audit.data.reason == "element se-01 is read-only"
    assert audit.data.details["error"] == "element_mode"


def test_each_file_and_element_change_has_its_action() -> None:
    record = file_record(FILE)
    facts = {
        "file.metadata_updated": MetadataUpdated(file=record, updated_by="sa_a"),
        "file.deleted": FileDeleted(
            file_id=FILE,
            element_id="se-01",
            storage_path="x",
            reason=DeletionReason.REQUESTED,
            deleted_by="sa_a",
            deleted_at=NOW,
        ),
        "file.delete_refused": FileCommandRejected(
            file_id=FILE,
            element_id="se-01",
            command="delete_file",
            reason=RejectionReason.FILE_NOT_FOUND,
            detail="no such file",
            rejected_at=NOW,
        ),
        "element.mode_changed": ModeChanged(
            element_id="se-01",
            from_mode=Mode.RW,
            to_mode=Mode.RO,
            changed_by="sa_a",
            reason="quarter closed",
            changed_at=NOW,
        ),
        "element.mode_change_refused": ModeChangeRejected(
            element_id="se-01",
            current_mode=Mode.AR,
            requested_mode=Mode.EDIT,
            allowed=[],
            reason="ar is final",
            rejected_at=NOW,
        ),
    }
    for action, payload in facts.items():
        audit = audit_of_fact(new_event(payload, source="se-01"), actor="sa_a")
        assert audit is not None, action
        assert audit.data.action == action
        assert audit.data.actor == "sa_a"
