"""How long the audit relay waits between attempts while Kafka is unreachable."""

from __future__ import annotations

from auth.outbox import next_retry_delay


def test_retry_delay_starts_at_the_poll_interval_doubles_and_is_capped() -> None:
    delays = []
    delay = 0.0
    for _ in range(8):
        delay = next_retry_delay(delay, poll_interval=1.0, maximum=30.0)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_retry_delay_never_exceeds_a_maximum_below_the_poll_interval() -> None:
    assert next_retry_delay(0.0, poll_interval=5.0, maximum=2.0) == 2.0
