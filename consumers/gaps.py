"""When may the projection go past offsets the broker never serves? Pure: no broker, no clock.

Asked for a partition from the projection's position, a broker may answer with records that
start further on. Usually that is a moment after a restart or a seek, and reading again from
the position gets the records in between. But a broker killed between reserving offsets and
writing them (the embedded broker on S3 can be) leaves offsets that hold no record at all, and
reading again forever would stop the projection for good. The proof that such offsets are
empty is the broker's own answer: asked from the same position at least ``reads`` times over
at least ``seconds``, it never served a record below a first offset. Only the offsets below
the lowest first offset it ever served are gone past, so no record the broker has shown is
skipped.

An answer further on than the lowest one is no new evidence: it too served nothing below
that lowest one, and counts as one more read. Only an answer nearer the position (a record
the broker had not shown before) starts the count again, with the gap made smaller; that can
happen only as many times as there are offsets in the gap, so a broker whose answers move
about can't keep the proof from ever landing.
"""

from __future__ import annotations

from dataclasses import dataclass

PROOF_READS = 5
PROOF_S = 30.0
REREAD_S = 3.0
"""How long the projection waits between two reads of a partition whose gap it investigates:
short and fixed, so that the proof lands about ``PROOF_S`` after the gap was first seen."""

Partition = tuple[str, int]


@dataclass
class _Answer:
    position: int
    first: int
    """The lowest first offset the broker served from ``position``."""
    since: float
    reads: int = 1


class AbsentOffsets:
    """What the broker answered past each partition's position, and since when."""

    def __init__(self, *, reads: int = PROOF_READS, seconds: float = PROOF_S) -> None:
        self.reads = reads
        self.seconds = seconds
        self._answers: dict[Partition, _Answer] = {}

    def proven(self, partition: Partition, position: int, first: int, now: float) -> int | None:
        """The broker served ``first`` (> ``position``) when asked from ``position`` at
        ``now``. Once no read has served anything below some offset often and long enough,
        that offset: the projection may go on from there (every offset from ``position`` up
        to it holds no record). None until then.

        A first answer, a new position, or an answer below the lowest one so far starts the
        count again; an answer at or past the lowest one is one more read."""
        if first <= position:  # no gap at all: nothing to prove
            self.forget(partition)
            return None
        seen = self._answers.get(partition)
        if seen is None or seen.position != position or first < seen.first:
            self._answers[partition] = _Answer(position, first, now)
            return None
        seen.reads += 1
        if seen.reads >= self.reads and now - seen.since >= self.seconds:
            return seen.first
        return None

    def investigating(self, partition: Partition) -> bool:
        """Whether a gap of ``partition`` is being looked into (re-read every ``REREAD_S``)."""
        return partition in self._answers

    def forget(self, partition: Partition) -> None:
        """The partition moved on (its records were applied, or the gap was accepted)."""
        self._answers.pop(partition, None)
