"""When may the projection go past offsets the broker never serves? Pure: no broker, no clock.

Asked for a partition from the projection's position, a broker may answer with records that
start further on. Usually that is a moment after a restart or a seek, and reading again from
the position gets the records in between. But a broker killed between reserving offsets and
writing them (the embedded broker on S3 can be) leaves offsets that hold no record at all, and
reading again forever would stop the projection for good. The proof that such offsets are
empty is the broker's own answer, the same every time: asked from the same position at least
``reads`` times over at least ``seconds``, it starts at the same later offset.
"""

from __future__ import annotations

from dataclasses import dataclass

PROOF_READS = 5
PROOF_S = 30.0

Partition = tuple[str, int]


@dataclass
class _Answer:
    position: int
    first: int
    since: float
    reads: int = 1


class AbsentOffsets:
    """What the broker answered past each partition's position, and since when."""

    def __init__(self, *, reads: int = PROOF_READS, seconds: float = PROOF_S) -> None:
        self.reads = reads
        self.seconds = seconds
        self._answers: dict[Partition, _Answer] = {}

    def proven(self, partition: Partition, position: int, first: int, now: float) -> bool:
        """The broker served ``first`` (> ``position``) when asked from ``position`` at
        ``now``: true once that answer has held long and often enough. A different answer
        starts the count again."""
        seen = self._answers.get(partition)
        if seen is None or (seen.position, seen.first) != (position, first):
            self._answers[partition] = _Answer(position, first, now)
            return False
        seen.reads += 1
        return seen.reads >= self.reads and now - seen.since >= self.seconds

    def forget(self, partition: Partition) -> None:
        """The partition moved on (its records were applied, or the gap was accepted)."""
        self._answers.pop(partition, None)
