"""The element's own record of itself: ``.artstore/element.json``, written atomically."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict

from events import ArchiveState, Mode
from storage_workers.backends import ObjectMissing, StorageBackend

ELEMENT_FILE = ".artstore/element.json"
TEMPLATES_DIR = ".artstore/templates/"
JOURNAL_DIR = ".artstore/journal/"
TOMBSTONES_DIR = ".artstore/deleted/"
RELEASES_DIR = ".artstore/releases/"
"""Claim checks (staged bytes) of finished changes, kept until the staged bytes are removed."""


class ElementMismatch(Exception):
    """The storage belongs to another element than the one the worker was started for."""


class Transition(BaseModel):
    """One mode change: who, when, why."""

    model_config = ConfigDict(frozen=True)

    from_mode: Mode
    to_mode: Mode
    changed_by: str
    reason: str
    changed_at: AwareDatetime


class ArchiveRecord(BaseModel):
    """An ``ar`` element's move to its cold tier, as element.json records it."""

    model_config = ConfigDict(frozen=True)

    state: ArchiveState
    in_place: bool
    """No cold backend: the content stays on the element's own storage."""
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None


class ElementState(BaseModel):
    """What element.json holds: identity, mode and the history of its mode changes."""

    model_config = ConfigDict(frozen=True, extra="allow")

    element_id: str
    mode: Mode
    created_at: AwareDatetime
    history: list[Transition] = []
    archive: ArchiveRecord | None = None
    """Set when the element moves to ar: the move of its content to the cold tier."""

    def with_mode(
        self, target: Mode, *, by: str, reason: str, at: datetime, cold_tier: bool = False
    ) -> ElementState:
        """The state after a mode change (to ar: its content's move to the cold tier begins,
        or, without a cold tier, it is archived in place at once)."""
        step = Transition(
            from_mode=self.mode, to_mode=target, changed_by=by, reason=reason, changed_at=at
        )
        state = self.model_copy(update={"mode": target, "history": [*self.history, step]})
        if target is not Mode.AR:
            return state
        if cold_tier:
            return state.archiving(at)
        archive = ArchiveRecord(
            state=ArchiveState.ARCHIVED, in_place=True, started_at=at, finished_at=at
        )
        return state.model_copy(update={"archive": archive})

    def archiving(self, at: datetime) -> ElementState:
        """The state once the move of the content to the cold tier has begun."""
        archive = ArchiveRecord(state=ArchiveState.ARCHIVING, in_place=False, started_at=at)
        return self.model_copy(update={"archive": archive})

    @property
    def archive_pending(self) -> bool:
        """An ar element whose content is not (all) on its cold tier yet."""
        archive = self.archive
        return self.mode is Mode.AR and (
            archive is None or archive.in_place or archive.state is ArchiveState.ARCHIVING
        )

    def archived(self, at: datetime) -> ElementState:
        """The state once every file's content is on the cold tier."""
        assert self.archive is not None
        done = self.archive.model_copy(update={"state": ArchiveState.ARCHIVED, "finished_at": at})
        return self.model_copy(update={"archive": done})


def load_or_create(
    backend: StorageBackend, *, element_id: str, initial_mode: Mode, now: datetime
) -> ElementState:
    """Read element.json, or create it for a new element; refuse a foreign element."""
    try:
        state = ElementState.model_validate_json(backend.read_bytes(ELEMENT_FILE))
    except ObjectMissing:
        state = ElementState(element_id=element_id, mode=initial_mode, created_at=now)
        save(backend, state)
        return state
    if state.element_id != element_id:
        raise ElementMismatch(
            f"this storage is element {state.element_id}, not {element_id}; "
            "check the worker's element id and backend"
        )
    return state


def save(backend: StorageBackend, state: ElementState) -> None:
    """Replace element.json atomically (and durably)."""
    backend.write_atomic(ELEMENT_FILE, state.model_dump_json(indent=2).encode())
    backend.sync_dirs([ELEMENT_FILE])


def load_templates(backend: StorageBackend) -> dict[str, dict[str, object]]:
    """Every ``.artstore/templates/<name>.json`` as a parsed JSON Schema."""
    found: dict[str, dict[str, object]] = {}
    for info in backend.list(TEMPLATES_DIR.rstrip("/")):
        name = info.key.rsplit("/", 1)[-1]
        if name.endswith(".json"):
            found[name[: -len(".json")]] = json.loads(backend.read_bytes(info.key))
    return found
