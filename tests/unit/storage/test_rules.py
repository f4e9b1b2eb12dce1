"""Pure rules: mode matrix and transitions, naming, capacity, placement, sidecar versions."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from events import CapacityStatus, Mode
from events.modes import ElementModeError, Operation, allows, check_transition, require
from storage_workers.capacity import DEFAULT_FLOORS, GB, measure
from storage_workers.config import Placement
from storage_workers.naming import file_id_of, sanitise, storage_filename, storage_path
from storage_workers.placement import PeerStatus, should_consume
from storage_workers.sidecar import (
    Sidecar,
    SidecarTooLarge,
    Templates,
    TemplateViolation,
    decode_sidecar,
)

U, M, D, RC, RM = (
    Operation.UPLOAD,
    Operation.UPDATE_METADATA,
    Operation.DELETE,
    Operation.READ_CONTENT,
    Operation.READ_METADATA,
)
SPEC_MATRIX = {
    Mode.EDIT: {U: True, M: True, D: True, RC: True, RM: True},
    Mode.RW: {U: True, M: True, D: False, RC: True, RM: True},
    Mode.RO: {U: False, M: False, D: False, RC: True, RM: True},
    Mode.AR: {U: False, M: False, D: False, RC: False, RM: True},
}


@pytest.mark.parametrize(
    ("mode", "operation"), [(m, o) for m in SPEC_MATRIX for o in SPEC_MATRIX[m]]
)
def test_mode_matrix_cell(mode: Mode, operation: Operation) -> None:
    assert allows(mode, operation) is SPEC_MATRIX[mode][operation]


def test_archived_content_reads_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ElementModeError, match="offline"):
        require("se-09", Mode.AR, Operation.READ_CONTENT)


LEGAL = {(Mode.RW, Mode.RO), (Mode.RO, Mode.AR), (Mode.RO, Mode.RW)}


@pytest.mark.parametrize(("current", "target"), [(a, b) for a in Mode for b in Mode])
def test_transition(current: Mode, target: Mode) -> None:
    refused = check_transition(current, target, confirm=True)
    assert (refused is None) is ((current, target) in LEGAL)
    if refused is not None:
        assert all(check_transition(current, m, confirm=True) is None for m in refused.allowed)


def test_ro_to_rw_needs_confirmation() -> None:
    refused = check_transition(Mode.RO, Mode.RW, confirm=False)
    assert refused is not None
    assert "confirm" in refused.reason


NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
FID = uuid.UUID("12345678-1234-1234-1234-123456789abc")


def test_storage_filename_and_path() -> None:
    name = storage_filename("Отчёт за май.PDF", "иван/петров", NOW, FID)
    assert name == f"Отчёт_за_май_иван_петров_20260304T050607_{FID}.pdf"
    assert storage_path(NOW, name) == f"2026/03/04/05/{name}"
    assert file_id_of(storage_path(NOW, name) + ".attr.json") == FID


@pytest.mark.parametrize("stem", ["x" * 400, "я" * 400])
def test_long_stems_are_cut_with_an_ellipsis(stem: str) -> None:
    name = storage_filename(stem + ".txt", "u", NOW, FID)
    assert len(name) <= 200
    assert len(name.encode()) <= 228
    assert name.endswith(f"..._u_20260304T050607_{FID}.txt")


@pytest.mark.parametrize(
    ("raw", "clean"), [("../..", "f"), ("a\x00\x1fb", "a_b"), ("a..b", "a.b"), (" -x- ", "x")]
)
def test_sanitise(raw: str, clean: str) -> None:
    assert sanitise(raw, fallback="f") == clean


def test_capacity_floors_use_the_larger_of_percent_and_size() -> None:
    floors = DEFAULT_FLOORS[Mode.RW]
    cap = measure(capacity_bytes=10_000 * GB, used_bytes=0, storage_free=None, floors=floors)
    assert cap.full_floor == 200 * GB
    small = measure(capacity_bytes=1000 * GB, used_bytes=0, storage_free=None, floors=floors)
    assert small.full_floor == 20 * GB
    assert small.after(985 * GB).status is CapacityStatus.FULL
    assert small.after(930 * GB).status is CapacityStatus.CRITICAL
    assert small.after(900 * GB).status is CapacityStatus.WARNING
    assert small.status is CapacityStatus.OK
    assert not small.fits(981 * GB)
    assert small.fits(980 * GB)


def peer(eid: str, prio: int, accepting: bool = True, seen: float = 100.0) -> PeerStatus:
    return PeerStatus(eid, Mode.RW, prio, accepting, seen)


def test_sequential_fill_picks_the_lowest_live_accepting_priority() -> None:
    me = peer("se-2", 2)
    kw = {"strategy": Placement.SEQUENTIAL, "now": 100.0, "timeout": 3.0}
    assert not should_consume(me, [peer("se-1", 1)], **kw)  # type: ignore[arg-type]
    assert should_consume(me, [peer("se-1", 1, accepting=False)], **kw)  # type: ignore[arg-type]
    assert should_consume(me, [peer("se-1", 1, seen=90.0)], **kw)  # type: ignore[arg-type]
    assert should_consume(me, [peer("se-3", 3)], **kw)  # type: ignore[arg-type]
    spread = {**kw, "strategy": Placement.SPREAD}
    assert should_consume(me, [peer("se-1", 1)], **spread)  # type: ignore[arg-type]


V1 = {
    "file_id": str(FID),
    "original_filename": "old.txt",
    "storage_filename": f"old_u_20200101T000000_{FID}.txt",
    "file_size": 3,
    "checksum": "A" * 64,
    "created_at": "2020-01-01T00:00:00",
    "legacy_flag": True,
}


def test_v1_is_migrated_and_unknown_fields_are_kept() -> None:
    sidecar = decode_sidecar(json.dumps(V1).encode(), key="2020/x.attr.json", element_id="se-1")
    assert sidecar.schema_version == "2.0"
    assert sidecar.checksum == "a" * 64
    assert sidecar.element_id == "se-1"
    assert sidecar.created_at.tzinfo is not None
    document = json.loads(sidecar.replace(description="new").encode())
    assert document["legacy_flag"] is True
    assert document["schema_version"] == "2.0"


def test_oversized_sidecars_are_refused() -> None:
    sidecar = decode_sidecar(json.dumps(V1).encode(), key="x.attr.json", element_id="se-1")
    with pytest.raises(SidecarTooLarge):
        sidecar.replace(metadata={"x": "y" * 5000}).encode()
    assert isinstance(sidecar, Sidecar)


def test_templates_validate_custom_attributes() -> None:
    templates = Templates({"default": {"type": "object", "properties": {"n": {"type": "number"}}}})
    templates.validate({"n": 1}, None)
    with pytest.raises(TemplateViolation, match=r"custom_attributes\.n"):
        templates.validate({"n": "one"}, None)
    with pytest.raises(TemplateViolation, match="does not exist"):
        templates.validate({}, "other")
