"""Where the projector reads again after a rewind."""

from __future__ import annotations

from consumers.rewinds import first_offsets, served_past
from consumers.store import PositionedEvent

FILES = "t.artstore.files"
ELEMENTS = "t.artstore.elements"


def at(topic: str, partition: int, offset: int) -> PositionedEvent:
    return PositionedEvent(topic, partition, offset)


def test_first_offsets_are_the_lowest_of_each_partition() -> None:
    events = [at(FILES, 0, 7), at(FILES, 0, 5), at(FILES, 1, 9), at(ELEMENTS, 0, 2)]
    assert first_offsets(events) == {(FILES, 0): 5, (FILES, 1): 9, (ELEMENTS, 0): 2}
    assert first_offsets([]) == {}


def test_served_past_names_only_partitions_that_went_beyond_their_position() -> None:
    events = [at(FILES, 0, 10), at(FILES, 0, 12), at(FILES, 1, 3), at(ELEMENTS, 0, 4)]
    seek_to = {(FILES, 0): 8, (FILES, 1): 3}
    # files[0] was served from 10 although its position is 8; files[1] from its position;
    # elements[0] was not asked about.
    assert served_past(events, seek_to) == {(FILES, 0): 10}
