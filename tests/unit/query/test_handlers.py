"""The projection's pure decisions: rows from facts, ordering rounds, element folding."""

from __future__ import annotations

import uuid
from datetime import timedelta

from consumers.changes import MarkFileDeleted, UpsertFile
from consumers.element_rows import merge_element
from consumers.file_rows import attribute_words, clean, extension_of, file_row, language_of
from consumers.handlers import project, rounds
from events import (
    ArchiveProgress,
    ArchiveState,
    CapacityStatus,
    DeletionReason,
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    FileDeleted,
    FileStored,
    LocalBackend,
    Mode,
    ModeChanged,
    ReceivedEvent,
    new_event,
)
from tests.factories import NOW, file_record


def received(payload: object) -> ReceivedEvent:
    envelope = new_event(payload, source="test")  # type: ignore[arg-type]
    return ReceivedEvent(envelope=envelope, key=envelope.subject, headers={}, token=None)


def test_file_stored_becomes_a_file_row_and_a_stored_upload() -> None:
    record = file_record(tags=["finance", "q4"], custom_attributes={"dept": "sales", "n": 3})
    changes = project(received(FileStored(file=record)))
    upsert, upload = changes
    assert isinstance(upsert, UpsertFile)
    assert upsert.row.extension == "pdf"
    assert upsert.row.language == "russian"  # "Отчёт.pdf"
    assert upsert.row.search_extra == "finance q4 sales 3"
    assert upload.status == "stored"
    assert upload.element_id == "se-01"


def test_extension_is_lowercase_and_absent_when_implausible() -> None:
    assert extension_of("Report.Final.PDF") == "pdf"
    assert extension_of("README") == ""
    assert extension_of(".bashrc") == ""
    assert extension_of("x." + "a" * 40) == ""


def test_language_prefers_an_explicit_attribute_then_the_script() -> None:
    assert language_of("report.pdf", None, [], {}) == "english"
    assert language_of("report.pdf", "Годовой отчёт", [], {}) == "russian"
    assert language_of("Отчёт.pdf", None, [], {"language": "en"}) == "english"


def test_attribute_words_skip_null_and_booleans_and_flatten_lists() -> None:
    assert attribute_words({"a": "x", "b": [1, "y", None], "c": True, "d": None}) == ["x", "1", "y"]


def test_nul_characters_are_replaced_everywhere() -> None:
    assert clean({"k\x00": ["a\x00b", 1]}) == {"k\ufffd": ["a\ufffdb", 1]}


def test_rounds_keep_each_keys_order_and_never_repeat_a_key() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    v1 = UpsertFile(file_row(file_record(a)))
    v2 = UpsertFile(file_row(file_record(a, version=2)))
    other = UpsertFile(file_row(file_record(b)))
    gone = MarkFileDeleted(a, NOW, "ops", "requested")
    assert rounds([v1, other, v2, gone]) == [[v1, other], [v2], [gone]]


def _registered(at_offset: int = 0, mode: Mode = Mode.RW) -> ElementRegistered:
    return ElementRegistered(
        element_id="se-01",
        mode=mode,
        backend=LocalBackend(root="/data/se-01"),
        priority=1,
        capacity_bytes=1000,
        free_bytes=900,
        worker="w1",
        started_at=NOW + timedelta(seconds=at_offset),
    )


def _heartbeat(at_offset: int, mode: Mode = Mode.RW, free: int = 800) -> ElementHeartbeat:
    return ElementHeartbeat(
        element_id="se-01",
        mode=mode,
        capacity_bytes=1000,
        used_bytes=1000 - free,
        free_bytes=free,
        file_count=3,
        status=CapacityStatus.OK,
        accepting_uploads=True,
        sent_at=NOW + timedelta(seconds=at_offset),
    )


def test_an_older_heartbeat_never_moves_an_element_backwards() -> None:
    changed = ModeChanged(
        element_id="se-01",
        from_mode=Mode.RW,
        to_mode=Mode.RO,
        changed_by="ops",
        reason="full enough",
        changed_at=NOW + timedelta(seconds=20),
    )
    row = merge_element(None, _registered())
    row = merge_element(row, _heartbeat(30, Mode.RO, free=500))
    row = merge_element(row, changed)
    late = merge_element(row, _heartbeat(10, Mode.RW, free=700))
    assert late["mode"] == "ro"
    assert late["free_bytes"] == 500
    assert late["backend"] == {"kind": "local", "root": "/data/se-01"}


def test_element_facts_fold_to_the_same_row_in_any_order() -> None:
    facts = [
        _registered(),
        _heartbeat(5),
        ElementFull(
            element_id="se-01", free_bytes=1, floor_bytes=20, detected_at=NOW + timedelta(seconds=9)
        ),
        _heartbeat(7),
    ]
    forward: dict[str, object] | None = None
    for fact in facts:
        forward = merge_element(forward, fact)
    backward: dict[str, object] | None = None
    for fact in reversed(facts):
        backward = merge_element(backward, fact)
    assert forward == backward
    assert forward is not None
    assert forward["capacity_status"] == "full"


def test_a_deletion_becomes_a_tombstone() -> None:
    fid = uuid.uuid4()
    (change,) = project(
        received(
            FileDeleted(
                file_id=fid,
                element_id="se-01",
                storage_path="x",
                reason=DeletionReason.REQUESTED,
                deleted_by="ops",
                deleted_at=NOW,
            )
        )
    )
    assert change == MarkFileDeleted(fid, NOW, "ops", "requested")


def test_an_ar_elements_heartbeats_keep_how_far_its_archive_has_come() -> None:
    def archiving(at: int, state: ArchiveState, online: int, cold: int) -> ElementHeartbeat:
        progress = ArchiveProgress(
            state=state,
            in_place=False,
            files_online=online,
            files_cold=cold,
            started_at=NOW,
            finished_at=NOW + timedelta(seconds=at) if state is ArchiveState.ARCHIVED else None,
        )
        return _heartbeat(at, Mode.AR).model_copy(update={"archive": progress})

    row = merge_element(None, _registered())
    assert merge_element(row, _heartbeat(1))["archive"] is None
    row = merge_element(row, archiving(5, ArchiveState.ARCHIVING, online=2, cold=1))
    row = merge_element(row, archiving(9, ArchiveState.ARCHIVED, online=0, cold=3))
    late = merge_element(row, archiving(7, ArchiveState.ARCHIVING, online=1, cold=2))
    assert late["archive"]["state"] == "archived"
    assert (late["archive"]["files_online"], late["archive"]["files_cold"]) == (0, 3)
