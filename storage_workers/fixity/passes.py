"""Running a fixity pass: check items in chunks, announce what each chunk found, checkpoint.

:func:`commit_progress` is the one place that orders a pass's side effects, as
:func:`storage_workers.durability.commit_changes` does for a change: facts first, then the
checkpoint, so a crash can repeat a fact but never lose one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pydantic import BaseModel

from events import FixityChecked, FixityOutcome
from storage_workers.crash import crash_point
from storage_workers.fixity.checks import AuditItem, Auditor, Verdict, sort_key
from storage_workers.fixity.state import FixityState, PassProgress, StateStore
from storage_workers.fixity.tally import Announcer

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[BaseModel]], Awaitable[None]]
"""Publish fact payloads (the caller wraps them in envelopes)."""
Confirm = Callable[[Sequence[AuditItem]], Awaitable[list[Verdict]]]
"""Check failed items once more where no writer can change them meanwhile."""
Clock = Callable[[], datetime]

CHUNK = 256
"""Items checked, and their facts announced, together."""
CHECKPOINT_S = 5.0
"""Seconds of checking between checkpoints of the pass (each one is a durable write): a crash
repeats at most that much, and announces its findings again."""


def new_pass_id(element_id: str, at: datetime) -> str:
    """A pass id that sorts by time and names its element."""
    return f"{element_id}-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


async def commit_progress(
    publish: Publish,
    store: StateStore | None,
    state: FixityState,
    facts: Sequence[BaseModel],
) -> None:
    """Announce ``facts``, then make ``state`` (the cursor past them) durable."""
    # 1. Announce first: a crash after this re-checks the chunk on the next start and
    #    announces its facts again (readers take a repeated finding as the same finding); the
    #    reverse order could move the cursor past a finding nobody heard of.
    if facts:
        await publish(facts)
    crash_point("fixity.published")
    # 2. Checkpoint: the pass resumes after this chunk, with its counts, after any crash.
    if store is not None:
        await asyncio.to_thread(store.save, state)
    crash_point("fixity.checkpointed")


class PassRunner:
    """Runs passes of one auditor."""

    def __init__(
        self,
        auditor: Auditor,
        announcer: Announcer,
        publish: Publish,
        *,
        store: StateStore | None = None,
        confirm: Confirm | None = None,
        clock: Clock,
        concurrency: int = 4,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> None:
        self.auditor = auditor
        self.announcer = announcer
        self.publish = publish
        self.store = store
        self.confirm = confirm
        self.clock = clock
        self._threads = concurrency
        self.checkpoint_s = checkpoint_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fixity")

    def _check_all(self, items: Sequence[AuditItem]) -> list[Verdict]:
        return [self.auditor.check(item) for item in items]

    def close(self) -> None:
        """Release the reading threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(
        self,
        items: Sequence[AuditItem],
        state: FixityState,
        *,
        file_scope: uuid.UUID | None = None,
    ) -> FixityChecked:
        """Check ``items`` (those after the cursor, if a pass is under way) and close the pass.

        ``state.current`` is the pass: a new one is started when there is none.
        """
        if state.current is None:
            started = self.clock()
            state.current = PassProgress(
                pass_id=new_pass_id(self.auditor.element_id, started), started_at=started
            )
        progress = state.current
        todo = list(items)
        if progress.cursor is not None:
            after = sort_key(progress.cursor)
            todo = [i for i in todo if sort_key(i.key) > after]
            log.info("resuming a fixity pass", extra={"pass_id": progress.pass_id})
        chunks = [todo[start : start + CHUNK] for start in range(0, len(todo), CHUNK)]
        # The next chunk is read while this one's facts and checkpoint are written: reading
        # never waits on the broker or the checkpoint, and the cursor still moves in order.
        ahead = asyncio.ensure_future(self._check(chunks[0])) if chunks else None
        checkpointed = time.monotonic()
        try:
            for index, chunk in enumerate(chunks):
                assert ahead is not None
                verdicts = await ahead
                ahead = None
                if index + 1 < len(chunks):
                    ahead = asyncio.ensure_future(self._check(chunks[index + 1]))
                facts = self._facts(verdicts, state, progress.pass_id)
                progress.tally.add_all(verdicts)
                progress.cursor = chunk[-1].key
                due = time.monotonic() - checkpointed >= self.checkpoint_s
                await commit_progress(self.publish, self.store if due else None, state, facts)
                if due:
                    checkpointed = time.monotonic()
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ahead
        closing = self.announcer.checked(
            progress.tally,
            pass_id=progress.pass_id,
            started_at=progress.started_at,
            finished_at=self.clock(),
            file_id=file_scope,
        )
        state.current = None
        if file_scope is None:
            state.last_full_pass = closing.summary()
        await commit_progress(self.publish, self.store, state, [closing])
        return closing

    async def _check(self, chunk: Sequence[AuditItem]) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        # One task per slice, not per item: small files cost less than a hand-off each.
        slices = [chunk[i :: self._threads] for i in range(self._threads)]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._check_all, s) for s in slices if s)
        )
        by_key = {v.key: v for part in done for v in part}
        verdicts = [by_key[item.key] for item in chunk]
        failed = [i for i, v in enumerate(verdicts) if v.outcome is FixityOutcome.FAIL]
        if failed and self.confirm is not None:
            confirmed = await self.confirm([chunk[i] for i in failed])
            for i, verdict in zip(failed, confirmed, strict=True):
                verdicts[i] = verdict
        return verdicts

    def _facts(
        self, verdicts: Sequence[Verdict], state: FixityState, pass_id: str
    ) -> list[BaseModel]:
        at = self.clock()
        facts: list[BaseModel] = []
        for verdict in verdicts:
            if verdict.outcome is FixityOutcome.FAIL:
                facts.extend(self.announcer.failures(verdict, at=at, pass_id=pass_id))
                state.failed.setdefault(verdict.key, verdict.findings[0].kind)
            elif verdict.outcome is FixityOutcome.PASS and verdict.key in state.failed:
                previous = state.failed.pop(verdict.key)
                recovered = self.announcer.recovered(verdict, previous, at=at, pass_id=pass_id)
                if recovered is not None:
                    facts.append(recovered)
            elif verdict.outcome is None:
                state.failed.pop(verdict.key, None)
        return facts
