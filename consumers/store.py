# SQL here is assembled from constant column lists and a quoted schema name, never from input.
# ruff: noqa: S608
"""The projection's PostgreSQL adapter: a batch of events and its offsets in one transaction.

Exactly-once effect comes from here. Each transaction first locks the stored positions of the
partitions it touches, drops records below them (already applied — a restart, a rebalance or a
zombie consumer re-delivering), refuses to skip ahead of them (a gap means this consumer's
position is stale, e.g. after a replay swapped the tables, or the broker served a later batch
than asked for: the caller seeks back; only a gap the broker proves, records removed by
retention, is accepted), writes the
rows with multi-row statements and moves the positions, then commits. A crash anywhere before
the commit leaves rows and positions as they were.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from consumers.changes import ApplyElementFact, Change, RestoreStep, UploadStatus
from consumers.element_rows import merge_element
from consumers.store_sql import ELEMENT_COLUMNS, Statements, create_pool
from consumers.write_plan import (
    FILE_COLUMNS,
    WritePlan,
    plan_writes,
)
from events import RESTORE_RANK, RestoreStatus

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PositionedEvent:
    """The changes one record asks for, and where the record sits in its topic."""

    topic: str
    partition: int
    offset: int
    changes: Sequence[Change] = ()


@dataclass
class ApplyResult:
    """What a transaction did."""

    applied: int = 0
    skipped: int = 0
    changed_files: bool = False
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    holes: dict[TopicPartition, int] = field(default_factory=dict)
    """Partitions whose batch had a hole the broker did not prove: applied up to the hole, the
    first missing offset; the consumer must read again from there."""


class PositionMismatch(Exception):
    """The batch starts after the stored position: the consumer must seek back to ``seek_to``."""

    def __init__(self, seek_to: Mapping[TopicPartition, int]):
        self.seek_to = dict(seek_to)
        where = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(self.seek_to.items()))
        super().__init__(f"records arrived past the stored positions; seek back to {where}")


class ProjectionStore:
    """Writes the projection in ``schema`` (the live ``public`` one, or a replay's fresh one)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        self.schema = schema
        self.sql = Statements(schema)

    @classmethod
    async def connect(
        cls,
        database_url: str,
        *,
        schema: str = "public",
        application_name: str = "artstore-projector",
    ) -> ProjectionStore:
        """A store with its own connection pool."""
        return cls(await create_pool(database_url, application_name=application_name), schema)

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()

    async def stored_positions(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """The next offset to apply per partition (partitions never applied are absent)."""
        rows = await self.pool.fetch(
            f"SELECT topic, partition, next_offset FROM {self.sql.t['projection_offsets']} "
            "WHERE next_offset IS NOT NULL"
        )
        wanted = set(partitions) if partitions is not None else None
        return {
            (r["topic"], r["partition"]): r["next_offset"]
            for r in rows
            if wanted is None or (r["topic"], r["partition"]) in wanted
        }

    async def apply(
        self,
        events: Sequence[PositionedEvent],
        *,
        plan: WritePlan | None = None,
        tolerate_gaps: Mapping[TopicPartition, int] | None = None,
    ) -> ApplyResult:
        """Apply ``events`` and advance the positions, all or nothing.

        ``plan`` is :func:`plan_batch` of ``events``, made beforehand; it is used when every
        event is applied (otherwise the kept ones are planned here). ``tolerate_gaps`` maps a
        partition to the first offset its broker still holds (its log-start offset), when that
        is past the stored position: retention removed the records between, so a batch that
        starts no later than there may skip them. Any other gap is refused
        (:class:`PositionMismatch`): the caller reads again from the stored position.
        """
        by_partition = _by_partition(events)
        tps = sorted(by_partition)
        result = ApplyResult()
        if not tps:
            return result
        topics = [t for t, _ in tps]
        parts = [p for _, p in tps]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO {self.sql.t['projection_offsets']} (topic, partition) "
                "SELECT * FROM unnest($1::text[], $2::integer[]) ON CONFLICT DO NOTHING",
                topics,
                parts,
            )
            rows = await conn.fetch(
                f"SELECT topic, partition, next_offset FROM {self.sql.t['projection_offsets']} "
                "WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::integer[])) "
                "ORDER BY topic, partition FOR UPDATE",
                topics,
                parts,
            )
            stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            kept: list[PositionedEvent] = []
            rewind: dict[TopicPartition, int] = {}
            advance: dict[TopicPartition, tuple[int, int, int]] = {}
            for tp in tps:
                position = stored.get(tp)
                fresh = [e for e in by_partition[tp] if position is None or e.offset >= position]
                result.skipped += len(by_partition[tp]) - len(fresh)
                if not fresh:
                    continue
                first = fresh[0].offset
                proven = (tolerate_gaps or {}).get(tp)
                if position is not None and first > position and (proven is None or first > proven):
                    rewind[tp] = position
                    continue
                # Offsets gone past without a record (a proven gap), so that applied records
                # plus gaps always add up to the position.
                gap = first - position if position is not None else 0
                # A hole inside the batch is a gap too: apply up to it; the caller reads again
                # from there.
                for i in range(1, len(fresh)):
                    expected = fresh[i - 1].offset + 1
                    if fresh[i].offset != expected and (proven is None or fresh[i].offset > proven):
                        result.holes[tp] = expected
                        fresh = fresh[:i]
                        break
                    gap += fresh[i].offset - expected
                kept.extend(fresh)
                advance[tp] = (fresh[-1].offset + 1, len(fresh), gap)
            if rewind:
                raise PositionMismatch(rewind)
            if plan is None or len(kept) != len(events):
                plan = plan_writes([change for event in kept for change in event.changes])
            result.changed_files = await self._write(conn, plan)
            if advance:
                keys = sorted(advance)
                await conn.execute(
                    f"UPDATE {self.sql.t['projection_offsets']} AS o SET next_offset = u.next, "
                    "events_applied = o.events_applied + u.n, "
                    "gap_offsets = o.gap_offsets + u.gap "
                    "FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::bigint[], "
                    "$5::bigint[]) AS u(topic, partition, next, n, gap) "
                    "WHERE o.topic = u.topic AND o.partition = u.partition",
                    [t for t, _ in keys],
                    [p for _, p in keys],
                    [advance[k][0] for k in keys],
                    [advance[k][1] for k in keys],
                    [advance[k][2] for k in keys],
                )
            result.applied = len(kept)
            result.positions = {tp: nxt for tp, (nxt, _, _) in advance.items()}
        return result

    async def record_uploads(self, statuses: Sequence[UploadStatus | RestoreStep]) -> None:
        """Write upload (or restore) statuses outside a batch (the facade notes "queued" right
        away, or that a restore could not be queued)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._write(conn, plan_writes(statuses))

    async def queue_restore(self, queued: RestoreStep) -> tuple[UUID, str]:
        """Record a queued restore, unless the file has one pending (queued, in progress, or
        restored and not yet expired): then that one's id and status, which the request joins.
        One transaction holding a lock on the file, so two requests at once join too."""
        restores = self.sql.t["restores"]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", str(queued.file_id)
            )
            pending = await conn.fetchrow(
                f"SELECT restore_id, status FROM {restores} WHERE file_id = $1 "
                "AND status_rank < $2 AND (expires_at IS NULL OR expires_at > now()) "
                "ORDER BY status_at DESC LIMIT 1",
                queued.file_id,
                RESTORE_RANK[RestoreStatus.EXPIRED],
            )
            if pending is not None:
                return pending["restore_id"], pending["status"]
            await self._write(conn, plan_writes([queued]))
            return queued.restore_id, queued.status

    async def _write(self, conn: asyncpg.Connection, plan: WritePlan) -> bool:
        if plan.file_records:
            await conn.copy_records_to_table(
                "incoming_files",
                schema_name="pg_temp",
                records=plan.file_records,
                columns=["round", *FILE_COLUMNS],
            )
        for step in plan.rounds:
            if step.has_files:
                await conn.execute(self.sql.upsert_files, step.number)
            if step.deletions:
                await conn.execute(self.sql.delete_files, *step.deletions)
            for column, notes in step.problems.items():
                await conn.execute(self.sql.note_problem[column], *notes)
            if step.uploads:
                await conn.execute(self.sql.upsert_uploads, *step.uploads)
            if step.audits:
                await conn.execute(self.sql.insert_audit, *step.audits)
            if step.restores:
                await conn.execute(self.sql.upsert_restores, *step.restores)
        if plan.findings:
            await conn.execute(self.sql.insert_findings, *plan.findings)
        if plan.passes:
            await conn.execute(self.sql.insert_passes, *plan.passes)
            await conn.execute(self.sql.mark_checked, plan.passes[0])
        if plan.element_facts:
            await self._fold_elements(conn, plan.element_facts)
        return plan.changed_files

    async def _fold_elements(self, conn: asyncpg.Connection, facts: list[ApplyElementFact]) -> None:
        ids = sorted({f.element_id for f in facts})
        rows = await conn.fetch(
            f"SELECT * FROM {self.sql.t['elements']} WHERE element_id = ANY($1::text[]) "
            "ORDER BY element_id FOR UPDATE",
            ids,
        )
        state: dict[str, dict[str, Any]] = {r["element_id"]: dict(r) for r in rows}
        for fact in facts:
            state[fact.element_id] = merge_element(state.get(fact.element_id), fact.fact)
        await conn.executemany(
            self.sql.upsert_element,
            [tuple(state[i].get(c) for c in ELEMENT_COLUMNS) for i in ids],
        )


def plan_batch(events: Sequence[PositionedEvent]) -> WritePlan:
    """The writes of a whole batch, in the order :meth:`ProjectionStore.apply` applies them."""
    by_partition = _by_partition(events)
    return plan_writes(
        [change for tp in sorted(by_partition) for e in by_partition[tp] for change in e.changes]
    )


def _by_partition(events: Sequence[PositionedEvent]) -> dict[TopicPartition, list[PositionedEvent]]:
    by_partition: dict[TopicPartition, list[PositionedEvent]] = defaultdict(list)
    for event in events:
        by_partition[(event.topic, event.partition)].append(event)
    return by_partition
