"""Facts about storage elements, announced on ``artstore.elements``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from events.models.cold import ArchiveProgress
from events.models.common import ElementBackend, ElementId, Mode, Strict
from events.models.fixity import FixityPassSummary


class CapacityStatus(StrEnum):
    """Where free space stands against the element's floors (SPEC §3)."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    FULL = "full"


class ElementRegistered(Strict):
    """A worker started serving an element; ``backend`` tells readers where its files live."""

    element_id: ElementId
    mode: Mode
    backend: ElementBackend
    priority: int = Field(ge=0)
    capacity_bytes: int = Field(ge=0)
    free_bytes: int = Field(ge=0)
    retention_days: int | None = Field(None, ge=1)
    worker: Annotated[str, StringConstraints(max_length=200)]
    started_at: AwareDatetime


class ElementHeartbeat(Strict):
    """Liveness and capacity, every few seconds while the worker runs."""

    element_id: ElementId
    mode: Mode
    priority: int = Field(
        0, ge=0, description="Placement priority (lower fills first), so peers can rank it."
    )
    capacity_bytes: int = Field(ge=0)
    used_bytes: int = Field(ge=0)
    free_bytes: int = Field(ge=0)
    file_count: int = Field(ge=0)
    status: CapacityStatus
    accepting_uploads: bool
    sent_at: AwareDatetime
    fixity_last_full_pass: FixityPassSummary | None = Field(
        None, description="The element's last complete fixity pass; None before the first."
    )
    archive: ArchiveProgress | None = Field(
        None, description="An ar element's move to its cold backend; None before ar."
    )


class ModeChanged(Strict):
    """The element moved to another mode; ``.artstore/element.json`` already says so."""

    element_id: ElementId
    from_mode: Mode
    to_mode: Mode
    changed_by: str
    reason: str
    changed_at: AwareDatetime


class ModeChangeRejected(Strict):
    """A ChangeMode command was refused; ``allowed`` lists the transitions that are legal now."""

    element_id: ElementId
    current_mode: Mode
    requested_mode: Mode
    allowed: list[Mode]
    reason: str
    rejected_at: AwareDatetime


class ElementFull(Strict):
    """The element stopped taking uploads: free space fell to the full floor, or what is
    offered does not fit above it (``detail`` says which)."""

    element_id: ElementId
    free_bytes: int = Field(ge=0)
    floor_bytes: int = Field(ge=0)
    detected_at: AwareDatetime
    detail: str | None = Field(None, max_length=2000)
