"""Offsets the broker never serves are gone past only on its repeated answer, and only up to
the lowest offset it ever served."""

from __future__ import annotations

from consumers.gaps import AbsentOffsets

P = ("t.artstore.files", 3)


def test_the_same_answer_must_hold_often_and_long_enough() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    # Often, but not yet long enough.
    assert [absent.proven(P, 10, 14, now=float(t)) for t in range(5)] == [None] * 5
    assert absent.proven(P, 10, 14, now=29.9) is None
    assert absent.proven(P, 10, 14, now=30.0) == 14


def test_long_but_not_often_enough_is_no_proof() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    assert absent.proven(P, 10, 14, now=0.0) is None
    assert absent.proven(P, 10, 14, now=100.0) is None
    assert absent.proven(P, 10, 14, now=200.0) is None


def test_an_answer_nearer_the_position_starts_again_with_a_smaller_gap() -> None:
    absent = AbsentOffsets(reads=3, seconds=10.0)
    assert absent.proven(P, 10, 14, now=0.0) is None
    assert absent.proven(P, 10, 14, now=5.0) is None
    # The broker now serves from 12: the records in between were coming after all.
    assert absent.proven(P, 10, 12, now=11.0) is None
    assert absent.proven(P, 10, 12, now=15.0) is None
    assert absent.proven(P, 10, 12, now=20.0) is None
    assert absent.proven(P, 10, 12, now=21.0) == 12


def test_answers_further_on_count_as_reads_and_the_gap_ends_at_the_lowest() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    # The broker's answers move about, never below 14: each read still shows nothing
    # from 10 to 13, and the record at 14 (shown once) is not gone past.
    answers = [14, 214, 14, 400, 20, 14, 250]
    results = [absent.proven(P, 10, a, now=5.0 * i) for i, a in enumerate(answers)]
    assert results == [None] * 6 + [14]


def test_answers_that_keep_advancing_still_end_in_a_proof() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    results = [absent.proven(P, 10, 14 + 200 * i, now=3.0 * i) for i in range(11)]
    assert results[:10] == [None] * 10
    assert results[10] == 14


def test_answers_that_keep_coming_nearer_restart_at_most_once_per_offset() -> None:
    absent = AbsentOffsets(reads=2, seconds=1.0)
    now = 0.0
    for first in (14, 13, 12, 11):  # every answer nearer: every one starts again
        assert absent.proven(P, 10, first, now=now) is None
        now += 0.5
    # Nothing is nearer than 11 but the position itself; 11 holds.
    assert absent.proven(P, 10, 11, now=now + 1.0) == 11


def test_a_new_position_starts_again() -> None:
    absent = AbsentOffsets(reads=2, seconds=1.0)
    assert absent.proven(P, 10, 14, now=0.0) is None
    assert absent.proven(P, 20, 24, now=5.0) is None
    assert absent.proven(P, 20, 24, now=6.0) == 24


def test_an_answer_at_the_position_ends_the_investigation() -> None:
    absent = AbsentOffsets(reads=2, seconds=1.0)
    assert absent.proven(P, 10, 14, now=0.0) is None
    assert absent.investigating(P)
    assert absent.proven(P, 10, 10, now=5.0) is None
    assert not absent.investigating(P)
    assert absent.proven(P, 10, 14, now=6.0) is None  # counted from the start again


def test_partitions_are_counted_apart_and_forgotten_once_they_move_on() -> None:
    absent = AbsentOffsets(reads=2, seconds=1.0)
    other = ("t.artstore.files", 4)
    assert absent.proven(P, 10, 14, now=0.0) is None
    assert absent.proven(other, 10, 14, now=0.5) is None
    assert absent.proven(P, 10, 14, now=2.0) == 14
    absent.forget(other)
    assert not absent.investigating(other)
    assert absent.proven(other, 10, 14, now=3.0) is None
