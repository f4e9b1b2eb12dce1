"""The element's auditor inside its worker: a pass at least once per period, at a bounded
rate, resumed after a restart, each finding confirmed where no write can race it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from events import FixityChecked, FixityPassSummary, Mode
from storage_workers.fixity.budget import ReadBudget
from storage_workers.fixity.checks import AuditItem, Auditor, AuditPolicy, Verdict, plan_items
from storage_workers.fixity.passes import PassRunner, Publish
from storage_workers.fixity.state import FixityState, StateStore
from storage_workers.fixity.tally import Announcer

if TYPE_CHECKING:
    from storage_workers.worker import ElementWorker

log = logging.getLogger(__name__)


class ElementAuditor:
    """Runs the fixity passes of one worker's element."""

    def __init__(
        self,
        worker: ElementWorker,
        publish: Publish,
        *,
        period: timedelta,
        budget: ReadBudget,
        policy: AuditPolicy,
        concurrency: int = 4,
        processes: int | None = None,
    ) -> None:
        self.worker = worker
        self.period = period
        self.store = StateStore(worker.backend)
        self.state = FixityState()
        self.auditor = Auditor(
            worker.backend,
            worker.element_id,
            worker.catalogue_entry,
            policy=policy,
            budget=budget,
        )
        self.runner = PassRunner(
            self.auditor,
            Announcer(worker.element_id, f"artstore-storage {worker.element_id} auditor"),
            publish,
            store=self.store,
            confirm=self._confirm,
            clock=worker.clock,
            concurrency=concurrency,
            processes=processes,
        )

    @property
    def last_full_pass(self) -> FixityPassSummary | None:
        """What heartbeats carry."""
        return self.state.last_full_pass

    async def load(self) -> None:
        """Read the state the element keeps (a pass under way resumes at the next run)."""
        self.state = await asyncio.to_thread(self.store.load)

    def due_in(self) -> timedelta:
        """How long until the next pass must start (zero: now, or one is under way)."""
        last = self.state.last_full_pass
        if self.state.current is not None or last is None:
            return timedelta(0)
        return max(timedelta(0), last.started_at + self.period - self.worker.clock())

    async def run_pass(self) -> FixityChecked:
        """Check the whole element once (resuming a pass under way)."""
        # An ar element's content is checked where it is online: files not moved to its cold
        # tier yet (their sidecars say which). Archived in place, its storage is its archive
        # medium and only its sidecars are checked.
        self.auditor.content_online = not (
            self.worker.state.mode is Mode.AR and self.worker.cold is None
        )
        items = await asyncio.to_thread(self._plan)
        checked = await self.runner.run(items, self.state)
        log.info(
            "fixity pass finished",
            extra={"pass_id": checked.pass_id, "outcome": checked.premis.outcome.value},
        )
        return checked

    async def run_forever(self, idle: float = 60.0) -> None:
        """Run a pass whenever one is due; look again at least every ``idle`` seconds."""
        while True:
            wait = self.due_in().total_seconds()
            if wait <= 0:
                try:
                    await self.run_pass()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("fixity pass failed; it resumes from its last checkpoint")
                    await asyncio.sleep(idle)
                continue
            await asyncio.sleep(min(wait, idle))

    def _plan(self) -> list[AuditItem]:
        return plan_items(self.worker.backend.list_keys(), self.worker.catalogue.entries())

    async def _confirm(self, items: Sequence[AuditItem]) -> list[Verdict]:
        # Under the worker's lock no upload, update or delete is half-done: a finding that
        # holds here is not a write in flight.
        async with self.worker.lock:
            return list(
                await asyncio.gather(*(asyncio.to_thread(self.auditor.check, i) for i in items))
            )

    def close(self) -> None:
        """Release the reading threads."""
        self.runner.close()
