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

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from consumers.changes import ApplyElementFact, Change, UploadStatus
from consumers.handlers import merge_element
from consumers.sql import asyncpg_dsn, quote_ident
from consumers.write_plan import (
    AUDIT_COLUMNS,
    FILE_COLUMNS,
    FINDING_COLUMNS,
    PASS_COLUMNS,
    UPLOAD_COLUMNS,
    WritePlan,
    plan_writes,
)

TopicPartition = tuple[str, int]

_FILE_TYPES = {
    "file_id": "uuid",
    "file_size": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "ttl_expires_at": "timestamptz",
    "version": "integer",
    "tags": "jsonb",
    "metadata": "jsonb",
    "custom_attributes": "jsonb",
}
_UPLOAD_TYPES = {
    "file_id": "uuid",
    "status_rank": "smallint",
    "status_at": "timestamptz",
    "file_size": "bigint",
    "requested_at": "timestamptz",
}
_AUDIT_TYPES = {"occurred_at": "timestamptz", "details": "jsonb"}
_ELEMENT_COLUMNS = (
    "element_id",
    "mode",
    "mode_as_of",
    "backend",
    "priority",
    "retention_days",
    "worker",
    "started_at",
    "capacity_bytes",
    "used_bytes",
    "free_bytes",
    "file_count",
    "capacity_status",
    "accepting_uploads",
    "capacity_as_of",
    "last_heartbeat_at",
    "full_at",
    "last_mode_change",
    "last_mode_rejection",
    "fixity_last_full_pass",
)
_PROBLEM_TIME_KEY = {
    "fixity": "checked_at",
    "fixity_failure": "detected_at",
    "last_rejection": "rejected_at",
}
_FINDING_TYPES = {"file_id": "uuid", "detected_at": "timestamptz", "fact": "jsonb"}
_PASS_TYPES = {
    "file_id": "uuid",
    "complete": "boolean",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    **{n: "bigint" for n in ("checked", "sound", "failed", "unreadable", "bytes_checked")},
    "findings": "jsonb",
    "fact": "jsonb",
}


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


_INCOMING_TYPES = {**_FILE_TYPES, "tags": "text[]", "metadata": "text", "custom_attributes": "text"}
_INCOMING = "pg_temp.incoming_files"


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )
    # File rows travel by binary COPY into this session-private table, then one INSERT ...
    # SELECT merges them: about twice as fast as binding arrays for every column.
    columns = ", ".join(f"{c} {_INCOMING_TYPES.get(c, 'text')}" for c in FILE_COLUMNS)
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS incoming_files (round integer, {columns}) "
        "ON COMMIT DELETE ROWS"
    )


async def create_pool(
    database_url: str, *, application_name: str, size: int = 2, custom_plans: bool = False
) -> asyncpg.Pool:
    """A small asyncpg pool that maps jsonb to Python values.

    ``custom_plans``: plan every execution of a prepared statement for its own parameters.
    asyncpg prepares and caches each query; after five executions PostgreSQL may switch to a
    generic plan, which for a full-text search cannot know how rare the words are (a rare word
    then walks the whole date index instead of the text index)."""
    settings = {"application_name": application_name}
    if custom_plans:
        settings["plan_cache_mode"] = "force_custom_plan"
    pool = await asyncpg.create_pool(
        asyncpg_dsn(database_url),
        min_size=1,
        max_size=size,
        init=_init_connection,
        server_settings=settings,
    )
    assert pool is not None
    return pool


def _unnest(columns: Sequence[str], types: Mapping[str, str]) -> str:
    params = ", ".join(f"${i}::{types.get(c, 'text')}[]" for i, c in enumerate(columns, start=1))
    return f"unnest({params}) AS u({', '.join(columns)})"


class ProjectionStore:
    """Writes the projection in ``schema`` (the live ``public`` one, or a replay's fresh one)."""

    def __init__(self, pool: asyncpg.Pool, schema: str = "public") -> None:
        self.pool = pool
        self.schema = schema
        s = quote_ident(schema)
        self._t = {
            name: f"{s}.{name}"
            for name in (
                "files",
                "uploads",
                "elements",
                "audit_log",
                "projection_offsets",
                "fixity_passes",
                "fixity_findings",
            )
        }
        file_select = ", ".join(
            f"u.{c}::jsonb" if c in ("metadata", "custom_attributes") else f"u.{c}"
            for c in FILE_COLUMNS
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in FILE_COLUMNS if c != "file_id")
        self._upsert_files = (
            f"INSERT INTO {self._t['files']} AS f ({', '.join(FILE_COLUMNS)}) "
            f"SELECT {file_select} FROM {_INCOMING} AS u WHERE u.round = $1 "
            f"ON CONFLICT (file_id) DO UPDATE SET {updates} "
            "WHERE f.deleted_at IS NULL "
            "AND (EXCLUDED.version, EXCLUDED.updated_at) > (f.version, f.updated_at)"
        )
        self._delete_files = (
            f"UPDATE {self._t['files']} AS f SET deleted_at = u.deleted_at, "
            "deleted_by = u.deleted_by, deletion_reason = u.reason "
            "FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) "
            "AS u(file_id, deleted_at, deleted_by, reason) "
            "WHERE f.file_id = u.file_id AND f.deleted_at IS NULL"
        )
        self._note_problem = {
            column: (
                f"UPDATE {self._t['files']} AS f SET {column} = u.details "
                "FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) "
                "AS u(file_id, at, details) "
                f"WHERE f.file_id = u.file_id AND (f.{column} IS NULL "
                f"OR (f.{column} ->> '{key}')::timestamptz < u.at)"
            )
            for column, key in _PROBLEM_TIME_KEY.items()
        }
        # A failure outranks the "sound" its own pass wrote (the pass's fact can be applied
        # first: it travels on another topic).
        self._note_problem["fixity"] = self._note_problem["fixity"].replace(
            "::timestamptz < u.at)",
            "::timestamptz < u.at OR (u.details ->> 'status' <> 'sound' "
            "AND f.fixity ->> 'status' = 'sound' "
            "AND f.fixity ->> 'pass_id' = u.details ->> 'pass_id'))",
        )
        self._insert_findings = (
            f"INSERT INTO {self._t['fixity_findings']} ({', '.join(FINDING_COLUMNS)}) "
            f"SELECT * FROM {_unnest(FINDING_COLUMNS, _FINDING_TYPES)} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        self._insert_passes = (
            f"INSERT INTO {self._t['fixity_passes']} ({', '.join(PASS_COLUMNS)}) "
            f"SELECT * FROM {_unnest(PASS_COLUMNS, _PASS_TYPES)} "
            "ON CONFLICT (pass_id) DO NOTHING"
        )
        # A pass checked every file of its scope stored before it started: those not found
        # failed (or unreadable) in it are sound as of its end.
        self._mark_checked = (
            f"UPDATE {self._t['files']} AS f SET fixity = jsonb_build_object("
            "'status', 'sound', 'checked_at', p.finished_at, 'pass_id', p.pass_id) "
            f"FROM {self._t['fixity_passes']} AS p "
            "WHERE p.pass_id = ANY($1::text[]) AND f.element_id = p.element_id "
            "AND (p.file_id IS NULL OR f.file_id = p.file_id) "
            "AND f.deleted_at IS NULL AND f.created_at <= p.started_at "
            "AND (f.fixity IS NULL OR (f.fixity ->> 'status' = 'sound' "
            "AND (f.fixity ->> 'checked_at')::timestamptz < p.finished_at)) "
            "AND NOT EXISTS (SELECT 1 FROM "
            f"{self._t['fixity_findings']} AS x WHERE x.pass_id = p.pass_id "
            "AND x.file_id = f.file_id) "
            "AND NOT (p.fact -> 'unreadable_files') @> "
            "jsonb_build_array(jsonb_build_object('file_id', f.file_id::text))"
        )
        up_cols = UPLOAD_COLUMNS
        higher = "EXCLUDED.status_rank > up.status_rank"
        self._upsert_uploads = (
            f"INSERT INTO {self._t['uploads']} AS up ({', '.join(up_cols)}) "
            f"SELECT * FROM {_unnest(up_cols, _UPLOAD_TYPES)} "
            "ON CONFLICT (file_id) DO UPDATE SET "
            f"status = CASE WHEN {higher} THEN EXCLUDED.status ELSE up.status END, "
            f"status_at = CASE WHEN {higher} THEN EXCLUDED.status_at ELSE up.status_at END, "
            f"reason = CASE WHEN {higher} THEN EXCLUDED.reason ELSE up.reason END, "
            f"detail = CASE WHEN {higher} THEN EXCLUDED.detail ELSE up.detail END, "
            f"element_id = CASE WHEN {higher} AND EXCLUDED.element_id IS NOT NULL "
            "THEN EXCLUDED.element_id ELSE up.element_id END, "
            "status_rank = GREATEST(up.status_rank, EXCLUDED.status_rank), "
            # Commands and facts arrive on different topics in any interleaving: the command's
            # correlation id wins whenever it is known, so replays produce the same row.
            "correlation_id = CASE WHEN EXCLUDED.status_rank = 0 THEN EXCLUDED.correlation_id "
            "WHEN up.requested_at IS NOT NULL THEN up.correlation_id "
            "ELSE COALESCE(up.correlation_id, EXCLUDED.correlation_id) END, "
            + ", ".join(
                f"{c} = COALESCE(up.{c}, EXCLUDED.{c})"
                for c in (
                    "original_filename",
                    "content_type",
                    "file_size",
                    "checksum",
                    "retention_policy",
                    "requested_at",
                )
            )
        )
        self._insert_audit = (
            f"INSERT INTO {self._t['audit_log']} ({', '.join(AUDIT_COLUMNS)}) "
            f"SELECT * FROM {_unnest(AUDIT_COLUMNS, _AUDIT_TYPES)} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        placeholders = ", ".join(f"${i}" for i in range(1, len(_ELEMENT_COLUMNS) + 1))
        self._upsert_element = (
            f"INSERT INTO {self._t['elements']} ({', '.join(_ELEMENT_COLUMNS)}) "
            f"VALUES ({placeholders}) ON CONFLICT (element_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _ELEMENT_COLUMNS[1:])
        )

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
            f"SELECT topic, partition, next_offset FROM {self._t['projection_offsets']} "
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
                f"INSERT INTO {self._t['projection_offsets']} (topic, partition) "
                "SELECT * FROM unnest($1::text[], $2::integer[]) ON CONFLICT DO NOTHING",
                topics,
                parts,
            )
            rows = await conn.fetch(
                f"SELECT topic, partition, next_offset FROM {self._t['projection_offsets']} "
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
                    f"UPDATE {self._t['projection_offsets']} AS o SET next_offset = u.next, "
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

    async def record_uploads(self, statuses: Sequence[UploadStatus]) -> None:
        """Write upload statuses outside a batch (the facade notes "queued" right away)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._write(conn, plan_writes(statuses))

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
                await conn.execute(self._upsert_files, step.number)
            if step.deletions:
                await conn.execute(self._delete_files, *step.deletions)
            for column, notes in step.problems.items():
                await conn.execute(self._note_problem[column], *notes)
            if step.uploads:
                await conn.execute(self._upsert_uploads, *step.uploads)
            if step.audits:
                await conn.execute(self._insert_audit, *step.audits)
        if plan.findings:
            await conn.execute(self._insert_findings, *plan.findings)
        if plan.passes:
            await conn.execute(self._insert_passes, *plan.passes)
            await conn.execute(self._mark_checked, plan.passes[0])
        if plan.element_facts:
            await self._fold_elements(conn, plan.element_facts)
        return plan.changed_files

    async def _fold_elements(self, conn: asyncpg.Connection, facts: list[ApplyElementFact]) -> None:
        ids = sorted({f.element_id for f in facts})
        rows = await conn.fetch(
            f"SELECT * FROM {self._t['elements']} WHERE element_id = ANY($1::text[]) "
            "ORDER BY element_id FOR UPDATE",
            ids,
        )
        state: dict[str, dict[str, Any]] = {r["element_id"]: dict(r) for r in rows}
        for fact in facts:
            state[fact.element_id] = merge_element(state.get(fact.element_id), fact.fact)
        await conn.executemany(
            self._upsert_element,
            [tuple(state[i].get(c) for c in _ELEMENT_COLUMNS) for i in ids],
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
