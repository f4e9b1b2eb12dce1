# SQL here is assembled from constant column lists and a quoted schema name, never from input.
# ruff: noqa: S608
"""The projection store's SQL: column types, the statements for a schema's tables, and the
connection pool (jsonb as Python values; file rows staged in a session-private table)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import asyncpg

from consumers.sql import asyncpg_dsn, quote_ident
from consumers.write_plan import (
    AUDIT_COLUMNS,
    FILE_COLUMNS,
    FINDING_COLUMNS,
    PASS_COLUMNS,
    RESTORE_COLUMNS,
    UPLOAD_COLUMNS,
)

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
    "document_id": "uuid",
    "document_version": "integer",
    "retain_until": "timestamptz",
    "legal_hold": "jsonb",
}
_UPLOAD_TYPES = {
    "file_id": "uuid",
    "status_rank": "smallint",
    "status_at": "timestamptz",
    "file_size": "bigint",
    "requested_at": "timestamptz",
}
_AUDIT_TYPES = {"occurred_at": "timestamptz", "details": "jsonb"}
_RESTORE_TYPES = {
    "restore_id": "uuid",
    "file_id": "uuid",
    "status_rank": "smallint",
    "status_at": "timestamptz",
    "expires_at": "timestamptz",
    "warned_at": "timestamptz",
    "requested_at": "timestamptz",
}
ELEMENT_COLUMNS = (
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
    "archive",
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


_INCOMING_TYPES = {
    **_FILE_TYPES,
    "tags": "text[]",
    "metadata": "text",
    "custom_attributes": "text",
    "legal_hold": "text",
}
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


class Statements:
    """The store's statements for the tables in ``schema``."""

    def __init__(self, schema: str) -> None:
        s = quote_ident(schema)
        self.t = {
            name: f"{s}.{name}"
            for name in (
                "files",
                "uploads",
                "elements",
                "audit_log",
                "projection_offsets",
                "fixity_passes",
                "fixity_findings",
                "restores",
            )
        }
        file_select = ", ".join(
            f"u.{c}::jsonb" if c in ("metadata", "custom_attributes", "legal_hold") else f"u.{c}"
            for c in FILE_COLUMNS
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in FILE_COLUMNS if c != "file_id")
        self.upsert_files = (
            f"INSERT INTO {self.t['files']} AS f ({', '.join(FILE_COLUMNS)}) "
            f"SELECT {file_select} FROM {_INCOMING} AS u WHERE u.round = $1 "
            f"ON CONFLICT (file_id) DO UPDATE SET {updates} "
            "WHERE f.deleted_at IS NULL "
            "AND (EXCLUDED.version, EXCLUDED.updated_at) > (f.version, f.updated_at)"
        )
        self.delete_files = (
            f"UPDATE {self.t['files']} AS f SET deleted_at = u.deleted_at, "
            "deleted_by = u.deleted_by, deletion_reason = u.reason "
            "FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) "
            "AS u(file_id, deleted_at, deleted_by, reason) "
            "WHERE f.file_id = u.file_id AND f.deleted_at IS NULL"
        )
        self.note_problem = {
            column: (
                f"UPDATE {self.t['files']} AS f SET {column} = u.details "
                "FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) "
                "AS u(file_id, at, details) "
                f"WHERE f.file_id = u.file_id AND (f.{column} IS NULL "
                f"OR (f.{column} ->> '{key}')::timestamptz < u.at)"
            )
            for column, key in _PROBLEM_TIME_KEY.items()
        }
        # A failure outranks the "sound" its own pass wrote (the pass's fact can be applied
        # first: it travels on another topic).
        self.note_problem["fixity"] = self.note_problem["fixity"].replace(
            "::timestamptz < u.at)",
            "::timestamptz < u.at OR (u.details ->> 'status' <> 'sound' "
            "AND f.fixity ->> 'status' = 'sound' "
            "AND f.fixity ->> 'pass_id' = u.details ->> 'pass_id'))",
        )
        self.insert_findings = (
            f"INSERT INTO {self.t['fixity_findings']} ({', '.join(FINDING_COLUMNS)}) "
            f"SELECT * FROM {_unnest(FINDING_COLUMNS, _FINDING_TYPES)} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        self.insert_passes = (
            f"INSERT INTO {self.t['fixity_passes']} ({', '.join(PASS_COLUMNS)}) "
            f"SELECT * FROM {_unnest(PASS_COLUMNS, _PASS_TYPES)} "
            "ON CONFLICT (pass_id) DO NOTHING"
        )
        # A pass checked every file of its scope stored before it started: those not found
        # failed (or unreadable) in it are sound as of its end.
        self.mark_checked = (
            f"UPDATE {self.t['files']} AS f SET fixity = jsonb_build_object("
            "'status', 'sound', 'checked_at', p.finished_at, 'pass_id', p.pass_id) "
            f"FROM {self.t['fixity_passes']} AS p "
            "WHERE p.pass_id = ANY($1::text[]) AND f.element_id = p.element_id "
            "AND (p.file_id IS NULL OR f.file_id = p.file_id) "
            "AND f.deleted_at IS NULL AND f.created_at <= p.started_at "
            "AND (f.fixity IS NULL OR (f.fixity ->> 'status' = 'sound' "
            "AND (f.fixity ->> 'checked_at')::timestamptz < p.finished_at)) "
            "AND NOT EXISTS (SELECT 1 FROM "
            f"{self.t['fixity_findings']} AS x WHERE x.pass_id = p.pass_id "
            "AND x.file_id = f.file_id) "
            "AND NOT (p.fact -> 'unreadable_files') @> "
            "jsonb_build_array(jsonb_build_object('file_id', f.file_id::text))"
        )
        up_cols = UPLOAD_COLUMNS
        higher = "EXCLUDED.status_rank > up.status_rank"
        self.upsert_uploads = (
            f"INSERT INTO {self.t['uploads']} AS up ({', '.join(up_cols)}) "
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
        self.insert_audit = (
            f"INSERT INTO {self.t['audit_log']} ({', '.join(AUDIT_COLUMNS)}) "
            f"SELECT * FROM {_unnest(AUDIT_COLUMNS, _AUDIT_TYPES)} "
            "ON CONFLICT (event_id) DO NOTHING"
        )
        climbs = "EXCLUDED.status_rank > r.status_rank"
        self.upsert_restores = (
            f"INSERT INTO {self.t['restores']} AS r ({', '.join(RESTORE_COLUMNS)}) "
            f"SELECT * FROM {_unnest(RESTORE_COLUMNS, _RESTORE_TYPES)} "
            "ON CONFLICT (restore_id) DO UPDATE SET "
            + ", ".join(
                f"{c} = CASE WHEN {climbs} THEN EXCLUDED.{c} ELSE r.{c} END"
                for c in ("status", "status_at", "reason", "detail")
            )
            + ", status_rank = GREATEST(r.status_rank, EXCLUDED.status_rank), "
            + ", ".join(
                f"{c} = COALESCE(EXCLUDED.{c}, r.{c})"
                for c in (
                    "element_id",
                    "requested_by",
                    "restore_element_id",
                    "storage_path",
                    "checksum",
                    "expires_at",
                    "warned_at",
                    "requested_at",
                )
            )
            # A restore id is the first asker's: a fact naming it for another file or another
            # account (a command that chose someone's restore id) changes nothing.
            + " WHERE r.file_id = EXCLUDED.file_id AND (r.requested_by IS NULL OR "
            "EXCLUDED.requested_by IS NULL OR r.requested_by = EXCLUDED.requested_by)"
        )
        placeholders = ", ".join(f"${i}" for i in range(1, len(ELEMENT_COLUMNS) + 1))
        self.upsert_element = (
            f"INSERT INTO {self.t['elements']} ({', '.join(ELEMENT_COLUMNS)}) "
            f"VALUES ({placeholders}) ON CONFLICT (element_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in ELEMENT_COLUMNS[1:])
        )
