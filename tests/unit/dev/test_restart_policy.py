"""The supervisor's restart decision: doubling backoff, a cap, and a reset after a stable run."""

from __future__ import annotations

import pytest

from artstore.dev import CrashHistory, RestartPolicy

POLICY = RestartPolicy(initial_delay_s=0.5, max_delay_s=8.0, factor=2.0, stable_after_s=30.0)


def test_each_crash_in_a_row_doubles_the_delay_up_to_the_cap() -> None:
    history = CrashHistory()
    delays = [history.crashed(ran_for_s=1.0, policy=POLICY) for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert history.consecutive == 7
    assert history.total == 7


def test_a_child_that_ran_stably_restarts_after_the_initial_delay_again() -> None:
    history = CrashHistory()
    for _ in range(4):
        history.crashed(ran_for_s=2.0, policy=POLICY)
    assert history.crashed(ran_for_s=31.0, policy=POLICY) == 0.5
    assert history.consecutive == 1
    assert history.total == 5, "the total still counts every restart for the report"


def test_a_run_just_short_of_stable_keeps_backing_off() -> None:
    history = CrashHistory()
    history.crashed(ran_for_s=29.9, policy=POLICY)
    assert history.crashed(ran_for_s=29.9, policy=POLICY) == 1.0


@pytest.mark.parametrize(("crashes", "delay"), [(0, 0.0), (1, 0.5), (2, 1.0), (100, 8.0)])
def test_delay_for_a_number_of_consecutive_crashes(crashes: int, delay: float) -> None:
    assert POLICY.delay(crashes) == delay


def test_the_default_policy_caps_at_thirty_seconds() -> None:
    assert RestartPolicy().delay(50) == 30.0
