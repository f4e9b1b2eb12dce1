"""The cold tier's pure parts: what element.json records when an element moves to ar, and what
the catalogue learns from a sidecar that records a cold copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events import ArchiveState, Mode
from storage_workers.catalogue import Catalogue, CatalogueEntry
from storage_workers.element import ElementState
from storage_workers.sidecar import COLD_COPY
from tests.factories import stored_sidecar

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ro_element() -> ElementState:
    return ElementState(element_id="se-07", mode=Mode.RO, created_at=T0)


def test_ar_with_a_cold_tier_starts_a_move_that_is_pending_until_recorded_archived() -> None:
    state = ro_element().with_mode(Mode.AR, by="sa_x", reason="tape", at=T0, cold_tier=True)
    assert state.mode is Mode.AR
    assert state.archive is not None
    assert (state.archive.state, state.archive.in_place) == (ArchiveState.ARCHIVING, False)
    assert state.archive_pending
    done = state.archived(T0 + timedelta(hours=2))
    assert done.archive is not None
    assert done.archive.state is ArchiveState.ARCHIVED
    assert done.archive.finished_at == T0 + timedelta(hours=2)
    assert not done.archive_pending
    assert ElementState.model_validate_json(done.model_dump_json()) == done


def test_ar_without_a_cold_tier_is_archived_in_place_at_once() -> None:
    state = ro_element().with_mode(Mode.AR, by="sa_x", reason="tape", at=T0)
    assert state.archive is not None
    assert (state.archive.state, state.archive.in_place) == (ArchiveState.ARCHIVED, True)
    # An in-place archive is moved once the element gets a cold tier.
    assert state.archive_pending


def test_other_mode_changes_record_no_archive() -> None:
    state = ro_element().with_mode(Mode.RW, by="sa_x", reason="reopen", at=T0, cold_tier=True)
    assert state.archive is None
    assert not state.archive_pending


def test_a_sidecar_with_a_cold_copy_makes_a_cold_catalogue_entry() -> None:
    online = stored_sidecar(b"content", element_id="se-07")
    moved = online.replace(**{COLD_COPY: {"key": online.storage_path, "sha256": online.checksum}})
    assert online.cold_copy is None
    assert moved.cold_copy == {"key": online.storage_path, "sha256": online.checksum}
    catalogue = Catalogue()
    catalogue.add(CatalogueEntry.of(online, online.encode()))
    assert [e.file_id for e in catalogue.online()] == [online.file_id]
    catalogue.add(CatalogueEntry.of(moved, moved.encode()))
    entry = catalogue.get(online.file_id)
    assert entry is not None
    assert entry.cold
    assert catalogue.online() == []
    assert moved.to_record() == online.to_record(), "facts don't change with the move"
