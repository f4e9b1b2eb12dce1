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
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from pydantic import BaseModel

from events import FixityChecked, FixityOutcome
from storage_workers.backends import LocalStorage
from storage_workers.crash import crash_point
from storage_workers.fixity.checks import (
    AuditItem,
    Auditor,
    KnownFile,
    Verdict,
    sort_key,
    sound_verdict,
)
from storage_workers.fixity.processes import Pieces, default_processes, helpers
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
SMALL_FILE = 128 * 1024
"""Mean size under which a local element's chunk is read on one thread."""
PIECE_FILES = 32
PIECE_BYTES = 8 * 1024 * 1024
"""Files, and bytes, per piece of a chunk offered to a helper process (the last pieces left
are what one side may wait for while the other finishes)."""
SPREAD_MIN = 32
"""Files of a chunk that one read could prove sound, from which the chunk is spread over the
helper processes (a single-file run is not worth a hand-off)."""
CHECKPOINT_S = 5.0
"""Seconds of checking between checkpoints of the pass (each one is a durable write): a crash
repeats at most that much, and announces its findings again."""


def _pieces(sizes: Sequence[tuple[int, int]]) -> list[list[int]]:
    """(index, size) of files cut into pieces of at most PIECE_FILES files, or PIECE_BYTES."""
    pieces: list[list[int]] = []
    piece: list[int] = []
    held = 0
    for index, size in sizes:
        if piece and (len(piece) >= PIECE_FILES or held + size > PIECE_BYTES):
            pieces.append(piece)
            piece, held = [], 0
        piece.append(index)
        held += size
    if piece:
        pieces.append(piece)
    return pieces


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
        processes: int | None = None,
        checkpoint_s: float = CHECKPOINT_S,
    ) -> None:
        self.auditor = auditor
        self.announcer = announcer
        self.publish = publish
        self.store = store
        self.confirm = confirm
        self.clock = clock
        self._threads = concurrency
        self.processes = default_processes() if processes is None else processes
        """Helper processes a chunk is spread over (:mod:`storage_workers.fixity.processes`);
        only for a local element, and only while the auditor's reads are unbounded."""
        self.helped = 0
        """Files the helper processes proved sound, over this runner's passes."""
        self.checkpoint_s = checkpoint_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fixity")
        self._own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fixity-own")
        """This process's share of spread chunks, one chunk after the other (two threads
        checking small files at once cost more in hand-overs of the GIL than they gain)."""
        self._lending = ThreadPoolExecutor(
            max_workers=max(1, 2 * self.processes), thread_name_prefix="fixity-lend"
        )
        """Threads that lend pieces to the helpers and wait for their answers."""

    def _check_each(self, items: Sequence[AuditItem]) -> list[Verdict]:
        return [self.auditor.check(item) for item in items]

    def close(self) -> None:
        """Release the reading threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._own.shutdown(wait=False, cancel_futures=True)
        self._lending.shutdown(wait=False, cancel_futures=True)

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
        # Spread over helper processes, two chunks are read at once: this process goes on with
        # the next one while a helper finishes the pieces it holds.
        depth = 2 if self._spread_root() is not None else 1
        ahead: deque[asyncio.Future[list[Verdict]]] = deque()
        queued = iter(chunks)

        def read_ahead() -> None:
            while len(ahead) < depth and (chunk := next(queued, None)) is not None:
                ahead.append(asyncio.ensure_future(self._check(chunk)))

        read_ahead()
        checkpointed = time.monotonic()
        try:
            for chunk in chunks:
                verdicts = await ahead.popleft()
                read_ahead()
                facts = self._facts(verdicts, state, progress.pass_id)
                progress.tally.add_all(verdicts)
                progress.cursor = chunk[-1].key
                due = time.monotonic() - checkpointed >= self.checkpoint_s
                await commit_progress(self.publish, self.store if due else None, state, facts)
                if due:
                    checkpointed = time.monotonic()
        finally:
            for reading in ahead:
                reading.cancel()
            for reading in ahead:
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
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
        root = self._spread_root()
        if root is not None and len(chunk) >= SPREAD_MIN:
            verdicts = await self._spread(chunk, root)
        else:
            verdicts = await self._threaded(chunk)
        failed = [i for i, v in enumerate(verdicts) if v.outcome is FixityOutcome.FAIL]
        if failed and self.confirm is not None:
            confirmed = await self.confirm([chunk[i] for i in failed])
            for i, verdict in zip(failed, confirmed, strict=True):
                verdicts[i] = verdict
        return verdicts

    async def _threaded(self, chunk: Sequence[AuditItem]) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        # One task per slice, not per item: small files cost less than a hand-off each.
        threads = self._threads_for(chunk)
        slices = [chunk[i::threads] for i in range(threads)]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._pool, self.auditor.check_all, s) for s in slices if s)
        )
        by_key = {v.key: v for part in done for v in part}
        return [by_key[item.key] for item in chunk]

    def _threads_for(self, chunk: Sequence[AuditItem]) -> int:
        """Threads a chunk is read on: one for small files of a local element (each file
        hands the GIL over about ten times; a second thread costs more than it saves),
        ``concurrency`` for larger ones (hashing them leaves the GIL free) and for every
        other storage (which waits on the network)."""
        if not isinstance(self.auditor.backend, LocalStorage):
            return self._threads
        sizes = [item.entry.file_size for item in chunk if isinstance(item, KnownFile)]
        return self._threads if sizes and sum(sizes) >= SMALL_FILE * len(sizes) else 1

    def _spread_root(self) -> str | None:
        """The element's directory when chunks may be spread over helper processes."""
        backend = self.auditor.backend
        if self.processes < 1 or not self.auditor.budget.unbounded:
            return None  # a bounded pass waits on its budget, not on a core
        return str(backend.root) if isinstance(backend, LocalStorage) else None

    async def _spread(self, chunk: Sequence[AuditItem], root: str) -> list[Verdict]:
        """Check a chunk here and in the helper processes.

        The files one read can prove sound are cut into pieces that the helpers take from the
        front; this process checks every other item, then takes pieces from the back and
        checks them itself: however busy the cores are, neither side waits long for the
        other. What a helper does not prove sound is checked here in full."""
        expected = [self.auditor.expected(item) for item in chunk]
        cut = _pieces([(i, found[1][1]) for i, found in enumerate(expected) if found])
        if sum(map(len, cut)) < SPREAD_MIN:
            return await self._threaded(chunk)
        pieces = Pieces(cut)
        files = [None if found is None else found[1] for found in expected]
        lent = {i for piece in cut for i in piece}
        here = [i for i in range(len(chunk)) if i not in lent]
        loop = asyncio.get_running_loop()
        proving = [
            loop.run_in_executor(self._lending, helper.prove, root, pieces, files)
            for helper in helpers(self.processes)
        ]
        verdicts = await loop.run_in_executor(self._own, self._check_here, chunk, here, pieces)
        again: list[int] = []
        for answered in await asyncio.gather(*proving):
            for piece, answer in answered:
                if answer is None:
                    again += piece
                    continue
                for i, sound in zip(piece, answer, strict=True):
                    found = expected[i]
                    if sound and found is not None:
                        verdicts[i] = sound_verdict(found[0])
                        self.helped += 1
                    else:
                        again.append(i)
        while (left := pieces.last()) is not None:  # left by a helper that failed
            again += left
        if again:
            rechecked = await loop.run_in_executor(
                self._pool, self._check_each, [chunk[i] for i in again]
            )
            verdicts.update(zip(again, rechecked, strict=True))
        return [verdicts[i] for i in range(len(chunk))]

    def _check_here(
        self, chunk: Sequence[AuditItem], here: Sequence[int], pieces: Pieces
    ) -> dict[int, Verdict]:
        """Check the items kept here, then pieces from the back until none is left."""
        verdicts = dict(zip(here, self.auditor.check_all([chunk[i] for i in here]), strict=True))
        while (piece := pieces.last()) is not None:
            checked = self.auditor.check_all([chunk[i] for i in piece])
            verdicts.update(zip(piece, checked, strict=True))
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
