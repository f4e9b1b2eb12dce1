"""Offsets the broker never serves are gone past only on its repeated, unchanging answer."""

from __future__ import annotations

from consumers.gaps import AbsentOffsets

P = ("t.artstore.files", 3)


def test_the_same_answer_must_hold_often_and_long_enough() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    # Often, but not yet long enough.
    assert [absent.proven(P, 10, 14, now=float(t)) for t in range(5)] == [False] * 5
    assert not absent.proven(P, 10, 14, now=29.9)
    assert absent.proven(P, 10, 14, now=30.0)


def test_long_but_not_often_enough_is_no_proof() -> None:
    absent = AbsentOffsets(reads=5, seconds=30.0)
    assert not absent.proven(P, 10, 14, now=0.0)
    assert not absent.proven(P, 10, 14, now=100.0)
    assert not absent.proven(P, 10, 14, now=200.0)


def test_a_changed_answer_starts_again() -> None:
    absent = AbsentOffsets(reads=3, seconds=10.0)
    assert not absent.proven(P, 10, 14, now=0.0)
    assert not absent.proven(P, 10, 14, now=5.0)
    # The broker now serves from 12: the records in between were coming after all.
    assert not absent.proven(P, 10, 12, now=11.0)
    assert not absent.proven(P, 10, 12, now=15.0)
    assert not absent.proven(P, 10, 12, now=20.0)
    assert absent.proven(P, 10, 12, now=21.0)


def test_partitions_are_counted_apart_and_forgotten_once_they_move_on() -> None:
    absent = AbsentOffsets(reads=2, seconds=1.0)
    other = ("t.artstore.files", 4)
    assert not absent.proven(P, 10, 14, now=0.0)
    assert not absent.proven(other, 10, 14, now=0.5)
    assert absent.proven(P, 10, 14, now=2.0)
    absent.forget(other)
    assert not absent.proven(other, 10, 14, now=3.0)
