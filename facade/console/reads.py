"""What the console reads from the projection: elements, recent uploads, rates, history, audit.

Every count is the projection's (the elements' heartbeats, indexed ranges), never a scan of
the whole archive, so a page costs the same with a thousand files or a million.
"""

# SQL here is assembled from fixed fragments; every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from facade.console.pages import Page, Position, cut


def _document(value: Any) -> dict[str, Any]:
    """A jsonb value as a dict, whether or not the pool decodes jsonb itself."""
    return dict(json.loads(value) if isinstance(value, str | bytes) else value)


async def elements(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every element as a document, with whatever columns the projection has (fixity, ...)."""
    rows = await conn.fetch(
        "SELECT to_jsonb(e) AS doc FROM elements e ORDER BY priority NULLS LAST, element_id"
    )
    return [_document(row["doc"]) for row in rows]


async def element(conn: asyncpg.Connection, element_id: str) -> dict[str, Any] | None:
    """One element as a document, or None."""
    raw = await conn.fetchval(
        "SELECT to_jsonb(e) FROM elements e WHERE element_id = $1", element_id
    )
    return None if raw is None else _document(raw)


async def recent_uploads(
    conn: asyncpg.Connection, *, status: str | None, after: Position | None, limit: int
) -> Page[asyncpg.Record]:
    """Uploads by their latest status change, newest first."""
    where = ["TRUE"]
    values: list[Any] = []
    if status:
        values.append(status)
        where.append(f"u.status = ${len(values)}")
    if after is not None:
        values += [after.at, UUID(after.key)]
        where.append(f"(u.status_at, u.file_id) < (${len(values) - 1}, ${len(values)}::uuid)")
    values.append(limit + 1)
    rows = await conn.fetch(
        f"""SELECT u.file_id, u.status, u.status_at, u.reason, u.detail, u.element_id,
                   u.original_filename, u.file_size, u.retention_policy, u.requested_at
            FROM uploads u WHERE {" AND ".join(where)}
            ORDER BY u.status_at DESC, u.file_id DESC LIMIT ${len(values)}""",
        *values,
    )
    return cut(list(rows), limit, at="status_at", key="file_id")


@dataclass(frozen=True)
class IngestRates:
    """The last hour of ingest: outcomes by status, bytes stored, per-minute rate."""

    since: datetime
    by_status: dict[str, int] = field(default_factory=dict)
    stored_bytes: int = 0

    @property
    def per_minute(self) -> float:
        """Stored uploads per minute over the hour."""
        return self.by_status.get("stored", 0) / 60


async def ingest_rates(conn: asyncpg.Connection, *, now: datetime) -> IngestRates:
    """Counts over the last hour, through the ``uploads_status_at`` index."""
    since = now - timedelta(hours=1)
    rows = await conn.fetch(
        "SELECT status, count(*) AS n, coalesce(sum(file_size) FILTER "
        "(WHERE status = 'stored'), 0)::bigint AS bytes "
        "FROM uploads WHERE status_at >= $1 GROUP BY status",
        since,
    )
    return IngestRates(
        since,
        {row["status"]: row["n"] for row in rows},
        sum(row["bytes"] for row in rows),
    )


async def file_document(conn: asyncpg.Connection, file_id: UUID) -> dict[str, Any] | None:
    """A file's row as a document (every projected column, fixity where it exists)."""
    raw = await conn.fetchval(
        "SELECT to_jsonb(f) - 'search_vector' - 'search_extra' FROM files f WHERE file_id = $1",
        file_id,
    )
    return None if raw is None else _document(raw)


async def upload_of(conn: asyncpg.Connection, file_id: UUID) -> asyncpg.Record | None:
    """The upload's status row."""
    return await conn.fetchrow("SELECT * FROM uploads WHERE file_id = $1", file_id)


async def subject_audit(
    conn: asyncpg.Connection, subject: str, *, limit: int = 50
) -> list[asyncpg.Record]:
    """Audit entries about one subject (a file id, an element id, a client id)."""
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE subject = $1 ORDER BY occurred_at DESC LIMIT $2",
            subject,
            limit,
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    """Filters of the audit log page (all optional, combined with AND)."""

    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def audit_page(
    conn: asyncpg.Connection, filters: AuditFilter, *, after: Position | None, limit: int
) -> Page[asyncpg.Record]:
    """The audit log newest first, filtered, keyset-paginated on (occurred_at, event_id)."""
    where = ["TRUE"]
    values: list[Any] = []

    def bind(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    for column, value in (
        ("actor", filters.actor),
        ("action", filters.action),
        ("subject", filters.subject),
        ("outcome", filters.outcome),
    ):
        if value:
            where.append(f"{column} = {bind(value)}")
    if filters.since is not None:
        where.append(f"occurred_at >= {bind(filters.since)}")
    if filters.until is not None:
        where.append(f"occurred_at <= {bind(filters.until)}")
    if after is not None:
        where.append(f"(occurred_at, event_id) < ({bind(after.at)}, {bind(after.key)})")
    rows = await conn.fetch(
        f"""SELECT event_id, occurred_at, action, actor, subject, outcome, reason, details,
                   source, correlation_id
            FROM audit_log WHERE {" AND ".join(where)}
            ORDER BY occurred_at DESC, event_id DESC LIMIT {bind(limit + 1)}""",
        *values,
    )
    return cut(list(rows), limit, at="occurred_at", key="event_id")


async def audit_actions(conn: asyncpg.Connection) -> list[str]:
    """Distinct actions for the filter's choices (a loose index scan over ``audit_log_action``)."""
    rows = await conn.fetch(
        """WITH RECURSIVE a AS (
               (SELECT action FROM audit_log ORDER BY action LIMIT 1)
               UNION ALL
               SELECT (SELECT action FROM audit_log WHERE action > a.action
                       ORDER BY action LIMIT 1) FROM a WHERE a.action IS NOT NULL
           ) SELECT action FROM a WHERE action IS NOT NULL LIMIT 100"""
    )
    return [row["action"] for row in rows]
