"""Facts about an element's cold tier: where the content of an ``ar`` element went."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from events.models.common import ElementId, Strict


class ArchiveState(StrEnum):
    """Where an ``ar`` element's content stands.

    ``archiving``: the element is ``ar`` (reads of content are refused) and its worker is
    moving the content to the cold backend; ``archived``: every file's content is on the cold
    backend, or stays where it is (``in_place``) for an element that has none.
    """

    ARCHIVING = "archiving"
    ARCHIVED = "archived"


class ArchiveProgress(Strict):
    """How far the move of an ``ar`` element's content to its cold backend has come."""

    state: ArchiveState
    in_place: bool = Field(
        description="No cold backend is configured: the content stays on the element's own "
        "storage, which is its archive medium."
    )
    files_online: int = Field(ge=0, description="Files whose content is still online.")
    files_cold: int = Field(ge=0, description="Files whose content is on the cold backend.")
    files_failed: int = Field(
        0, ge=0, description="Files whose online copy could not be moved (see the worker's log)."
    )
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None


class ElementArchived(Strict):
    """Every file of the ``ar`` element has its content on the cold backend (or archived in
    place); its sidecars stay online."""

    element_id: ElementId
    files_cold: int = Field(ge=0)
    bytes_cold: int = Field(ge=0)
    started_at: AwareDatetime
    finished_at: AwareDatetime
