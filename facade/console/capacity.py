"""An element's fill against its capacity and free-space floors, for the fill bar.

The floors are the storage workers' own rule (SPEC §3), with the same ``ARTSTORE_STORAGE_FLOOR_*``
overrides the workers read, so the bar's marks sit where the workers will act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from events import Mode
from storage_workers.capacity import DEFAULT_FLOORS, Floor


class FloorOverrides(BaseSettings):
    """The workers' floor overrides (``ARTSTORE_STORAGE_FLOOR_*``), where the facade shares them."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_STORAGE_FLOOR_", extra="ignore")

    warning_percent: float | None = None
    warning_bytes: int | None = None
    critical_percent: float | None = None
    critical_bytes: int | None = None
    full_percent: float | None = None
    full_bytes: int | None = None


@dataclass(frozen=True)
class Fill:
    """Used bytes against capacity, and the used-bytes marks where each floor is reached."""

    capacity: int
    used: int
    free: int
    warning_at: int
    critical_at: int
    full_at: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.capacity if self.capacity else 0.0


def _pick(floor: Floor, percent: float | None, fixed: int | None) -> Floor:
    return Floor(
        floor.percent if percent is None else percent,
        floor.fixed_bytes if fixed is None else fixed,
    )


def fill_of(element: dict[str, Any], overrides: FloorOverrides) -> Fill | None:
    """The element's fill from its last heartbeat; None before it announced its capacity."""
    capacity = element.get("capacity_bytes")
    if not capacity:
        return None
    free = int(element.get("free_bytes") or 0)
    used = int(element.get("used_bytes") or max(0, capacity - free))
    base = DEFAULT_FLOORS[Mode.EDIT if element.get("mode") == "edit" else Mode.RW]
    o = overrides
    warning = _pick(base.warning, o.warning_percent, o.warning_bytes).bytes_for(capacity)
    critical = _pick(base.critical, o.critical_percent, o.critical_bytes).bytes_for(capacity)
    full = _pick(base.full, o.full_percent, o.full_bytes).bytes_for(capacity)
    return Fill(
        capacity=capacity,
        used=used,
        free=free,
        warning_at=max(0, capacity - warning),
        critical_at=max(0, capacity - critical),
        full_at=max(0, capacity - full),
    )
