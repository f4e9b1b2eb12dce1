"""A dependency that is away is an outage, not a poison record.

When a record fails in a way that trying again may cure (the storage, the staging area, the
upload claims' database, the signing keys or the deny-list did not answer), the worker asks
each of its dependencies whether it answers. If one does not, the failure is the outage's, not
the record's:

- the consumer that failed stops taking records: it seeks back to the record that failed and
  pauses its partitions (a circuit breaker, open);
- the worker reports itself not ready, naming what is away;
- the dependencies are probed with a bounded backoff until every one answers; then every
  paused consumer resumes from where it stopped (the breaker closes).

Nothing is dead-lettered for an outage and no attempt of the record's is spent on it. Only a
failure while every dependency answers is the record's own: retried a few times in place,
then dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from storage_workers.partitions import PartitionConsumer

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (anything) when it does not."""


class DependencyAway(Exception):
    """A record failed because a dependency is away: hold it, don't count it against it."""


class Outages:
    """Which dependencies are away, the consumers paused for them, and the probing that ends
    the outage."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        probe_timeout_s: float = 5.0,
        first_delay_s: float = 0.5,
        max_delay_s: float = 10.0,
        on_change: Callable[[Mapping[str, str]], None] | None = None,
    ) -> None:
        self.probes = dict(probes)
        self.probe_timeout_s = probe_timeout_s
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.on_change = on_change
        self.away: dict[str, str] = {}
        """Dependency -> why it is away (empty while every one answers)."""
        self.since: float | None = None
        """When the outage began (monotonic), None while there is none."""
        self._paused: dict[int, PartitionConsumer] = {}
        self._tripped = asyncio.Event()
        self._probing: dict[str, asyncio.Future[None]] = {}
        """The probe of each dependency in flight: one at a time, however long it hangs."""

    def reason(self) -> str | None:
        """Why the worker can't take records now, or None."""
        if not self.away:
            return None
        listed = "; ".join(f"{name}: {why}" for name, why in sorted(self.away.items()))
        return f"waiting for what is away ({listed}); consuming is paused"

    async def _probe(self, name: str) -> str | None:
        probing = self._probing.get(name)
        if probing is None or probing.done():
            probing = self._probing[name] = asyncio.ensure_future(self.probes[name]())
            # Its outcome is read here, or (once it outlived a wait) by no one.
            probing.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            async with asyncio.timeout(self.probe_timeout_s):
                await asyncio.shield(probing)
        except TimeoutError:
            return f"no answer within {self.probe_timeout_s:g} s"
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return None

    async def diagnose(self) -> dict[str, str]:
        """Probe every dependency at once; returns (and records) the ones away."""
        names = list(self.probes)
        answers = await asyncio.gather(*(self._probe(n) for n in names))
        away = {n: why for n, why in zip(names, answers, strict=True) if why is not None}
        self._set(away)
        return away

    async def confirm(self, failure: BaseException) -> None:
        """After ``failure`` of a record: raise :class:`DependencyAway` when a dependency is
        away (the record is to be held), return when every one answers (the failure is the
        record's own)."""
        away = self.away or await self.diagnose()
        if away:
            raise DependencyAway(self.reason() or str(failure)) from failure

    def pause(self, consumer: PartitionConsumer) -> None:
        """Pause every partition ``consumer`` owns (sought back to the held records by the
        caller, :func:`~storage_workers.redelivery.seek_back`), until every dependency
        answers again."""
        consumer.pause(*consumer.assignment())
        self._paused[id(consumer)] = consumer
        self._tripped.set()

    def _set(self, away: dict[str, str]) -> None:
        if away == self.away:
            return
        if away and not self.away:
            self.since = time.monotonic()
            log.error("a dependency is away: consuming pauses", extra={"away": away})
        elif not away:
            lasted = time.monotonic() - (self.since or time.monotonic())
            log.warning(
                "every dependency answers again: consuming resumes",
                extra={"outage_s": round(lasted, 1)},
            )
            self.since = None
        self.away = away
        if away:
            self._tripped.set()
        if self.on_change is not None:
            self.on_change(away)

    def _resume(self) -> None:
        paused, self._paused = self._paused, {}
        for consumer in paused.values():
            with contextlib.suppress(Exception):  # it may have stopped meanwhile
                consumer.resume(*consumer.paused())

    async def run(self) -> None:
        """Forever: once tripped, probe with a growing delay until every dependency answers,
        then resume the paused consumers."""
        while True:
            await self._tripped.wait()
            delay = self.first_delay_s
            while await self.diagnose():
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
            self._tripped.clear()
            self._resume()
