"""The auditor's record in the element (``.artstore/fixity/state.json``): the pass under way
(so a restart resumes it), the last full pass, and the files whose last finding was a failure
(so a file found sound again is announced as recovered)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events import FixityFindingKind, FixityPassSummary
from storage_workers.backends import ObjectMissing, StorageBackend
from storage_workers.fixity.tally import Tally

STATE_KEY = ".artstore/fixity/state.json"


class PassProgress(BaseModel):
    """A pass under way: everything up to ``cursor`` (in walking order) is checked and
    announced."""

    model_config = ConfigDict(extra="ignore")

    pass_id: str
    started_at: AwareDatetime
    cursor: str | None = None
    tally: Tally = Field(default_factory=Tally)


class FixityState(BaseModel):
    """What the auditor keeps between checkpoints and across restarts."""

    model_config = ConfigDict(extra="ignore")

    current: PassProgress | None = None
    last_full_pass: FixityPassSummary | None = None
    failed: dict[str, FixityFindingKind] = Field(default_factory=dict)
    """Key -> the kind first found, for every item whose last check failed."""


class StateStore:
    """Reads and replaces the state, atomically and durably, through the element's backend."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend

    def load(self) -> FixityState:
        """The stored state, or a fresh one."""
        try:
            raw = self.backend.read_bytes(STATE_KEY)
        except ObjectMissing:
            return FixityState()
        return FixityState.model_validate_json(raw)

    def save(self, state: FixityState) -> None:
        """Replace the state (atomic rename, directory synced)."""
        self.backend.write_atomic(STATE_KEY, state.model_dump_json().encode())
        self.backend.sync_dirs([STATE_KEY])
