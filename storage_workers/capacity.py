"""Free-space floors and the element's capacity status (SPEC §3). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from events import CapacityStatus, Mode

GB = 1000**3


@dataclass(frozen=True, slots=True)
class Floor:
    """A free-space floor: the larger of a share of capacity and a fixed size."""

    percent: float
    fixed_bytes: int

    def bytes_for(self, capacity: int) -> int:
        """The floor in bytes for an element of ``capacity`` bytes."""
        return max(int(capacity * self.percent / 100), self.fixed_bytes)


@dataclass(frozen=True, slots=True)
class Floors:
    """Warning, critical and full floors for one element class."""

    warning: Floor
    critical: Floor
    full: Floor


DEFAULT_FLOORS: dict[Mode, Floors] = {
    Mode.RW: Floors(Floor(15, 150 * GB), Floor(8, 80 * GB), Floor(2, 20 * GB)),
    Mode.EDIT: Floors(Floor(10, 100 * GB), Floor(5, 50 * GB), Floor(1, 10 * GB)),
}


@dataclass(frozen=True, slots=True)
class Capacity:
    """How much an element holds and may still take."""

    capacity_bytes: int
    used_bytes: int
    free_bytes: int
    floors: Floors

    @property
    def full_floor(self) -> int:
        """Free bytes below which the element takes nothing more."""
        return self.floors.full.bytes_for(self.capacity_bytes)

    @property
    def status(self) -> CapacityStatus:
        """OK, warning, critical or full."""
        free = self.free_bytes
        if free <= self.full_floor:
            return CapacityStatus.FULL
        if free <= self.floors.critical.bytes_for(self.capacity_bytes):
            return CapacityStatus.CRITICAL
        if free <= self.floors.warning.bytes_for(self.capacity_bytes):
            return CapacityStatus.WARNING
        return CapacityStatus.OK

    def fits(self, size: int) -> bool:
        """True when ``size`` more bytes leave the element at or above its full floor."""
        return self.free_bytes - size >= self.full_floor

    def after(self, size: int) -> Capacity:
        """The capacity once ``size`` more bytes are stored (negative: freed)."""
        return Capacity(
            self.capacity_bytes,
            max(0, self.used_bytes + size),
            max(0, self.free_bytes - size),
            self.floors,
        )


def measure(
    *, capacity_bytes: int, used_bytes: int, storage_free: int | None, floors: Floors
) -> Capacity:
    """Capacity from the configured size, what the element holds and what the disk reports."""
    free = max(0, capacity_bytes - used_bytes)
    if storage_free is not None:
        free = min(free, storage_free)
    return Capacity(capacity_bytes, used_bytes, free, floors)
