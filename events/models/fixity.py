"""Fixity facts: what an element's auditor found when it re-read stored bytes (SPEC §3 Fixity).

Each fact carries the fields of a PREMIS fixity-check event (``premis``): event type, date and
time, agent, outcome and outcome detail, so an archive's fixity log can be exported as PREMIS
without reading anything else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from events.models.common import ElementId, Sha256Hex, Strict


class FixityFindingKind(StrEnum):
    """What is wrong with a stored file. Each value is documented in docs/fixity.md."""

    CHECKSUM_MISMATCH = "checksum_mismatch"
    """The data file's bytes hash to another sha256 than its sidecar records (same size)."""
    SIZE_MISMATCH = "size_mismatch"
    """The data file is shorter or longer than its sidecar records (truncated, appended to)."""
    DATA_MISSING = "data_missing"
    """The sidecar is there, the data file is not."""
    SIDECAR_MISSING = "sidecar_missing"
    """The element's catalogue knows the file, its sidecar is gone."""
    SIDECAR_INVALID = "sidecar_invalid"
    """The sidecar can't be read as attr.json (not JSON, fails its schema, over 4 KB)."""
    SIDECAR_CHANGED = "sidecar_changed"
    """The sidecar is valid but is not what the element's worker last wrote."""
    ORPHAN_DATA = "orphan_data"
    """A data file named like one of the element's files, with no sidecar and unknown to the
    catalogue."""
    STRAY_FILE = "stray_file"
    """A file on the element that is neither a known file, its sidecar, nor the element's own."""


class FixityOutcome(StrEnum):
    """PREMIS event outcome of a check."""

    PASS = "pass"
    FAIL = "fail"
    UNREADABLE = "unreadable"
    """The storage did not answer (retried, still failing): nothing is known about the bytes."""


class PremisEvent(Strict):
    """The PREMIS 3 event fields of a fixity check (``event_type`` from the Library of
    Congress event-type vocabulary)."""

    event_type: Literal["fixity check"] = "fixity check"
    event_date_time: AwareDatetime
    agent: str = Field(description="Who checked, e.g. 'artstore-storage se-01 auditor'.")
    outcome: FixityOutcome
    outcome_detail: str


class FixityFailed(Strict):
    """A finding: a stored file (or a stray object) is not what the element recorded.

    Declared only after the mismatch was read again ``attempts`` times with the same result; a
    storage error is never a finding (it is counted as unreadable in :class:`FixityChecked`).
    """

    element_id: ElementId
    file_id: UUID | None = Field(None, description="None for a stray file with no file id.")
    storage_path: str = Field(description="Key of the object relative to the element root.")
    kind: FixityFindingKind
    expected_checksum: Sha256Hex | None = None
    observed_checksum: Sha256Hex | None = None
    expected_size: int | None = Field(None, ge=0)
    observed_size: int | None = Field(None, ge=0)
    attempts: int = Field(1, ge=1, description="Reads that all gave this result.")
    detail: str
    detected_at: AwareDatetime
    pass_id: str | None = Field(None, description="The pass that found it (None: a download).")
    premis: PremisEvent


class FixityRecovered(Strict):
    """A file whose last finding was a failure is sound again (repaired, or restored)."""

    element_id: ElementId
    file_id: UUID
    storage_path: str
    checksum: Sha256Hex
    size: int = Field(ge=0)
    previous_kind: FixityFindingKind | None = None
    checked_at: AwareDatetime
    pass_id: str
    premis: PremisEvent


class UnreadableFile(Strict):
    """A file the storage would not give back during a pass (to be retried)."""

    file_id: UUID | None = None
    storage_path: str
    detail: str


class FixityPassSummary(Strict):
    """How a pass ended: what heartbeats and the element registry carry as its last full pass."""

    pass_id: str
    started_at: AwareDatetime
    finished_at: AwareDatetime
    checked: int = Field(ge=0)
    sound: int = Field(ge=0)
    failed: int = Field(ge=0)
    unreadable: int = Field(ge=0)
    bytes_checked: int = Field(ge=0)


MAX_UNREADABLE_LISTED = 200
"""Unreadable files named in one FixityChecked; the count is always complete."""


class FixityChecked(Strict):
    """One audit pass over an element (``scope=element``) or one file (``scope=file``).

    ``checked = sound + failed + unreadable``, always (the model refuses anything else). Every
    stored file, and every stray object, counts once; ``findings`` counts findings by kind (a
    file may have more than one).
    """

    element_id: ElementId
    pass_id: str
    scope: Literal["element", "file"]
    file_id: UUID | None = None
    complete: bool = Field(description="True when the pass covered the whole scope.")
    started_at: AwareDatetime
    finished_at: AwareDatetime
    checked: int = Field(ge=0)
    sound: int = Field(ge=0)
    failed: int = Field(ge=0)
    unreadable: int = Field(ge=0)
    bytes_checked: int = Field(ge=0)
    sidecars_checked: int = Field(ge=0)
    content_offline: int = Field(
        0, ge=0, description="Files whose content is offline (mode ar): only the sidecar checked."
    )
    findings: dict[FixityFindingKind, int] = Field(default_factory=dict)
    unreadable_files: list[UnreadableFile] = Field(
        default_factory=list, max_length=MAX_UNREADABLE_LISTED
    )
    premis: PremisEvent

    @model_validator(mode="after")
    def _counts_add_up(self) -> FixityChecked:
        if self.checked != self.sound + self.failed + self.unreadable:
            raise ValueError(
                f"checked ({self.checked}) must equal sound ({self.sound}) + failed "
                f"({self.failed}) + unreadable ({self.unreadable})"
            )
        return self

    def summary(self) -> FixityPassSummary:
        """The pass as heartbeats carry it."""
        return FixityPassSummary(
            pass_id=self.pass_id,
            started_at=self.started_at,
            finished_at=self.finished_at,
            checked=self.checked,
            sound=self.sound,
            failed=self.failed,
            unreadable=self.unreadable,
            bytes_checked=self.bytes_checked,
        )
