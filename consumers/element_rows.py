"""The ``elements`` row after an element's fact; each group of fields only moves forward in
time. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consumers.changes import ElementFact
from consumers.file_rows import clean
from events import (
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    FixityChecked,
    ModeChanged,
    ModeChangeRejected,
)


def merge_element(current: dict[str, Any] | None, fact: ElementFact) -> dict[str, Any]:
    """The element's row after ``fact``; each group of fields only moves forward in time."""
    row: dict[str, Any] = dict(current or {"element_id": fact.element_id})
    match fact:
        case ElementRegistered():
            if _newer(fact.started_at, row.get("started_at")):
                row.update(
                    backend=fact.backend.model_dump(mode="json"),
                    priority=fact.priority,
                    retention_days=fact.retention_days,
                    worker=clean(fact.worker),
                    started_at=fact.started_at,
                )
            _set_mode(row, fact.mode.value, fact.started_at)
            if _newer(fact.started_at, row.get("capacity_as_of")):
                row.update(
                    capacity_bytes=fact.capacity_bytes,
                    free_bytes=fact.free_bytes,
                    capacity_as_of=fact.started_at,
                )
        case ElementHeartbeat():
            _set_mode(row, fact.mode.value, fact.sent_at)
            if _newer(fact.sent_at, row.get("capacity_as_of")):
                row.update(
                    capacity_bytes=fact.capacity_bytes,
                    used_bytes=fact.used_bytes,
                    free_bytes=fact.free_bytes,
                    file_count=fact.file_count,
                    capacity_status=fact.status.value,
                    accepting_uploads=fact.accepting_uploads,
                    capacity_as_of=fact.sent_at,
                    archive=None if fact.archive is None else fact.archive.model_dump(mode="json"),
                )
            if _newer(fact.sent_at, row.get("last_heartbeat_at")):
                row["last_heartbeat_at"] = fact.sent_at
            summary = fact.fixity_last_full_pass
            last = row.get("fixity_last_full_pass") or {}
            if summary is not None and _newer(
                summary.finished_at, _parse_time(last.get("finished_at"))
            ):
                row["fixity_last_full_pass"] = summary.model_dump(mode="json")
        case ModeChanged():
            if _set_mode(row, fact.to_mode.value, fact.changed_at):
                row["last_mode_change"] = clean(fact.model_dump(mode="json"))
        case ModeChangeRejected():
            previous = row.get("last_mode_rejection") or {}
            if _newer(fact.rejected_at, _parse_time(previous.get("rejected_at"))):
                row["last_mode_rejection"] = clean(fact.model_dump(mode="json"))
        case FixityChecked():
            last = row.get("fixity_last_full_pass") or {}
            if (
                fact.complete
                and fact.scope == "element"
                and _newer(fact.finished_at, _parse_time(last.get("finished_at")))
            ):
                row["fixity_last_full_pass"] = fact.summary().model_dump(mode="json")
        case ElementFull():
            if _newer(fact.detected_at, row.get("capacity_as_of")):
                row.update(
                    free_bytes=fact.free_bytes,
                    capacity_status="full",
                    accepting_uploads=False,
                    capacity_as_of=fact.detected_at,
                    full_at=fact.detected_at,
                )
    return row


def _set_mode(row: dict[str, Any], mode: str, at: datetime) -> bool:
    if _newer(at, row.get("mode_as_of")):
        row["mode"] = mode
        row["mode_as_of"] = at
        return True
    return False


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None
