"""Where the projector reads again after a rewind: pure arithmetic on a batch's positions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consumers.store import PositionedEvent


def served_past(
    events: Sequence[PositionedEvent], seek_to: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Per partition to read again: the first offset of the batch past its position."""
    served: dict[tuple[str, int], int] = {}
    for event in events:
        key = (event.topic, event.partition)
        position = seek_to.get(key)
        if position is not None and event.offset > position:
            served[key] = min(served.get(key, event.offset), event.offset)
    return served


def first_offsets(events: Sequence[PositionedEvent]) -> dict[tuple[str, int], int]:
    """Per partition: the first offset among ``events``."""
    first: dict[tuple[str, int], int] = {}
    for event in events:
        key = (event.topic, event.partition)
        first[key] = min(first.get(key, event.offset), event.offset)
    return first
