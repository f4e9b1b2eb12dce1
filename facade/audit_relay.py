"""The facade's audit events on their way to ``artstore.audit``: journaled first, then relayed.

:meth:`AuditRelay.record` writes an event to the facade instance's journal
(``facade.audit_journal``) and returns once it is on disk; only then does the facade answer the
request it audits. Requests arriving together share one write and one ``fsync``. The relay
sends journaled events in batches, and removes a segment once the broker has acknowledged every
event in it. While Kafka is away the events stay journaled and the relay retries with a capped
backoff; if the facade dies meanwhile, the next start with the same journal sends what is left,
and so does a facade that starts beside a journal nobody holds any more.

:meth:`AuditRelay.record` answers False when ``capacity`` events are waiting already, or the
journal cannot be written: the facade then refuses downloads (503) rather than serve one it
could not audit, and counts refusals it could not record in
``artstore_facade_audit_dropped_total`` (a flood of bad requests must not be able to stop every
download). See docs/decisions.md, "Audit".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from events import AuditRecorded, Envelope, OutgoingRecord
from facade.audit_journal import AuditJournal

log = logging.getLogger(__name__)

SegmentRef = tuple[AuditJournal, int]
"""A segment: its journal and its number."""

PENDING = Gauge("artstore_facade_audit_pending", "Audit events journaled, not yet on the broker")
DROPPED = Counter(
    "artstore_facade_audit_dropped_total",
    "Audit events of refusals not recorded: journal full or not writable",
)


class RecordSender(Protocol):
    """Encodes events and sends records, returning once the broker acknowledged them all."""

    def encode(self, envelope: Envelope[Any], token: str | None = None) -> OutgoingRecord: ...

    async def send_records(self, records: Sequence[OutgoingRecord]) -> object: ...


class AuditRelay:
    """Journals audit events durably and relays them; holds at most ``capacity`` unsent."""

    def __init__(
        self,
        journal: AuditJournal,
        sender: RecordSender,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 30.0,
    ) -> None:
        self._journal = journal
        self._sender = sender
        self._capacity = capacity
        self._batch = batch_size
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        # Journaled, not yet acknowledged, in journal order, each with its segment.
        self._unsent: deque[tuple[SegmentRef, OutgoingRecord]] = deque()
        # Per segment, how many of its events the broker has not acknowledged yet.
        self._unacked: dict[SegmentRef, int] = {}
        # Journals of instances that are gone, relayed until they are empty.
        self._adopted: list[AuditJournal] = []
        # Events waiting for the next journal write, with whoever waits for them.
        self._waiting: list[tuple[OutgoingRecord, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Held while writing to or removing segments: a segment is never removed mid-append.
        self._disk = asyncio.Lock()
        self._wake = asyncio.Event()
        self.published = 0
        self.failures = 0

    def resume(self, adopted: Sequence[AuditJournal] = ()) -> None:
        """Take up what an earlier run left in the journal, and the events of ``adopted``
        journals of instances that are gone (blocking: reads the disk)."""
        self._adopted = list(adopted)
        for journal in (self._journal, *self._adopted):
            before = len(self._unsent)
            empty = []
            for segment in journal.recover():
                if not segment.records:
                    empty.append(segment.number)
                    continue
                ref = (journal, segment.number)
                self._unacked[ref] = len(segment.records)
                self._unsent.extend((ref, r) for r in segment.records)
            journal.remove(empty)
            if left := len(self._unsent) - before:
                log.warning(
                    "audit events left in a journal by an earlier run are sent again",
                    extra={"pending": left, "journal": str(journal.directory)},
                )
        self._discard_emptied()
        PENDING.set(self.pending)

    def _discard_emptied(self) -> None:
        for journal in [j for j in self._adopted if not any(r[0] is j for r in self._unacked)]:
            journal.discard()
            self._adopted.remove(journal)

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the broker (journaled or about to be)."""
        return len(self._unsent) + len(self._waiting)

    def has_room(self) -> bool:
        """False once ``capacity`` events wait (Kafka has been away too long)."""
        return self.pending < self._capacity

    async def record(self, event: Envelope[AuditRecorded]) -> bool:
        """Journal ``event``; True once it is on disk, False if it could not be recorded."""
        if not self.has_room():
            log.error("audit journal full", extra={"action": event.data.action})
            return False
        try:
            record = self._sender.encode(event)
        except Exception as exc:
            log.error(
                "audit event could not be encoded",
                extra={"action": event.data.action, "error": str(exc)},
            )
            return False
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="audit-journal")
        # Shielded: a request that goes away does not take the others' write with it.
        return await asyncio.shield(future)

    async def _write_waiting(self) -> None:
        """Group commit: everything waiting goes to disk in one write and one fsync."""
        async with self._disk:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                recorded = False
                try:
                    records = [record for record, _ in batch]
                    number = await asyncio.to_thread(self._journal.append, records)
                    ref = (self._journal, number)
                    self._unsent.extend((ref, r) for r in records)
                    self._unacked[ref] = self._unacked.get(ref, 0) + len(records)
                    recorded = True
                    self._wake.set()
                except OSError as exc:
                    log.error(
                        "audit events could not be journaled",
                        extra={"error": str(exc), "events": len(batch)},
                    )
                finally:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(recorded)
                    PENDING.set(self.pending)

    async def flush_once(self) -> int:
        """Send the oldest batch; return how many went out (raises if the broker refused)."""
        batch = list(itertools.islice(self._unsent, self._batch))
        if not batch:
            return 0
        await self._sender.send_records([record for _, record in batch])
        for ref, _ in batch:
            self._unsent.popleft()
            self._unacked[ref] -= 1
        self.published += len(batch)
        PENDING.set(self.pending)
        await self._remove_acknowledged()
        return len(batch)

    async def _remove_acknowledged(self) -> None:
        async with self._disk:
            # Counted under the lock: an append to the active segment may have just finished.
            done = [ref for ref, left in self._unacked.items() if left == 0]
            if not done:
                return
            for ref in done:
                del self._unacked[ref]
            try:
                await asyncio.to_thread(self._remove, done)
            except OSError as exc:
                # Left on disk, they are sent again at the next start: duplicates, not losses.
                log.error("acknowledged audit segments not removed", extra={"error": str(exc)})

    def _remove(self, refs: Sequence[SegmentRef]) -> None:
        for journal in {ref[0] for ref in refs}:
            journal.remove([number for j, number in refs if j is journal])
        self._discard_emptied()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop``; a failed send keeps the events and retries after a backoff."""
        delay = 0.0
        while not stop.is_set():
            self._wake.clear()
            try:
                while await self.flush_once():
                    pass
            except Exception as exc:
                self.failures += 1
                delay = min(max(delay * 2, self._retry_initial), self._retry_max)
                log.warning(
                    "audit events stay journaled; the broker refused them",
                    extra={"error": str(exc), "pending": self.pending, "retry_in_s": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            delay = 0.0
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def drain(self, timeout_s: float) -> int:
        """At shutdown: try to send what is left for up to ``timeout_s``; return what remains
        (it stays in the journal for the next start)."""
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(timeout_s):
                if self._writer is not None:
                    await self._writer
                while await self.flush_once():
                    pass
        if self.pending:
            log.warning(
                "audit events not delivered at shutdown stay in the journal",
                extra={"pending": self.pending, "journal": str(self._journal.directory)},
            )
        return self.pending

    async def close(self) -> None:
        """Stop recording: waiting requests hear False, the active segment is closed."""
        async with self._disk:
            for _, future in self._waiting:
                if not future.done():
                    future.set_result(False)
            self._waiting.clear()
            self._journal.seal()
            for journal in self._adopted:
                journal.close()
