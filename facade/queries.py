"""Read-side SQL over the projection: search, a file, an upload, elements.

Search ranks by relevance only within a bounded candidate set (the newest ``rank_candidates``
matches), so a query matching half the archive costs about as much as one matching a handful.
Pagination is keyset (sort value, file_id): stable while rows are added, no OFFSET scans.
"""

# SQL here is assembled from fixed fragments; every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from facade.search import SearchSpec

_SUMMARY_COLUMNS = (
    "file_id",
    "original_filename",
    "extension",
    "file_size",
    "content_type",
    "checksum",
    "created_at",
    "updated_at",
    "created_by_username",
    "description",
    "tags",
    "custom_attributes",
    "element_id",
    "retention_policy",
    "version",
    "language",
    "document_id",
    "document_version",
    "retain_until",
    "legal_hold",
)
_SORT_COLUMN = {
    "created_at": "created_at",
    "file_size": "file_size",
    "filename": "original_filename",
}


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str | None = None) -> str:
        self.values.append(value)
        ref = f"${len(self.values)}"
        return f"{ref}::{cast}" if cast else ref


@dataclass
class SearchPage:
    """One page of results."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    candidates_capped: bool


def _like_pattern(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# A version is the latest of its document when no later version of it is left.
LATEST_VERSION = (
    "NOT EXISTS (SELECT 1 FROM files n WHERE n.document_id = f.document_id "
    "AND n.document_version > f.document_version AND n.deleted_at IS NULL)"
)


def _filters(spec: SearchSpec, p: _Params) -> tuple[list[str], str | None]:
    where = ["f.deleted_at IS NULL"]
    if not spec.all_versions:
        where.append(LATEST_VERSION)
    query = None
    if spec.q is not None:
        q = p.add(spec.q, "text")
        # The index's configuration, and its normalisation of punctuation inside words.
        query = f"websearch_to_tsquery('russian', public.search_text({q}))"
        where.append(f"f.search_vector @@ {query}")
    if spec.filename:
        where.append(f"lower(f.original_filename) LIKE {p.add(_like_pattern(spec.filename))}")
    if spec.extensions:
        where.append(f"f.extension = ANY({p.add(list(spec.extensions), 'text[]')})")
    if spec.tags:
        where.append(f"f.tags @> {p.add(list(spec.tags), 'text[]')}")
    if spec.username:
        where.append(f"f.created_by_username = {p.add(spec.username)}")
    if spec.size_min is not None:
        where.append(f"f.file_size >= {p.add(spec.size_min, 'bigint')}")
    if spec.size_max is not None:
        where.append(f"f.file_size <= {p.add(spec.size_max, 'bigint')}")
    if spec.created_from is not None:
        where.append(f"f.created_at >= {p.add(spec.created_from, 'timestamptz')}")
    if spec.created_to is not None:
        where.append(f"f.created_at <= {p.add(spec.created_to, 'timestamptz')}")
    if spec.elements:
        where.append(f"f.element_id = ANY({p.add(list(spec.elements), 'text[]')})")
    if spec.retention_policy:
        where.append(f"f.retention_policy = {p.add(spec.retention_policy)}")
    if spec.language:
        where.append(f"f.language = {p.add(spec.language)}")
    for attribute in spec.attributes:
        alternatives = [
            f"f.custom_attributes @> {p.add(doc, 'jsonb')}" for doc in attribute.containments()
        ]
        where.append(f"({' OR '.join(alternatives)})")
    return where, query


async def search(conn: asyncpg.Connection, spec: SearchSpec, *, rank_candidates: int) -> SearchPage:
    """Run a validated search and return one page."""
    p = _Params()
    where, query = _filters(spec, p)
    columns = ", ".join(f"f.{c}" for c in _SUMMARY_COLUMNS)
    limit = p.add(spec.limit + 1, "integer")
    if spec.sort == "relevance":
        assert query is not None
        cap = p.add(rank_candidates, "integer")
        keyset = ""
        if spec.cursor is not None:
            r = p.add(spec.cursor.value, "float8")
            i = p.add(spec.cursor.file_id, "uuid")
            keyset = f"WHERE c.rank < {r} OR (c.rank = {r} AND c.file_id > {i})"
        sql = f"""
            WITH matches AS MATERIALIZED (
                SELECT f.file_id, f.search_vector FROM files f
                WHERE {" AND ".join(where)}
                ORDER BY f.created_at DESC, f.file_id DESC
                LIMIT {cap}
            ), candidates AS MATERIALIZED (
                SELECT m.file_id, ts_rank(m.search_vector, {query})::float8 AS rank FROM matches m
            )
            SELECT {columns}, c.rank AS rank, (SELECT count(*) FROM matches) AS candidate_count
            FROM candidates c JOIN files f ON f.file_id = c.file_id
            {keyset}
            ORDER BY c.rank DESC, c.file_id ASC
            LIMIT {limit}
        """
    else:
        column = f"f.{_SORT_COLUMN[spec.sort]}"
        direction = "DESC" if spec.descending else "ASC"
        if spec.cursor is not None:
            cast = {"created_at": "timestamptz", "file_size": "bigint", "filename": "text"}
            v = p.add(spec.cursor.value, cast[spec.sort])
            i = p.add(spec.cursor.file_id, "uuid")
            where.append(f"({column}, f.file_id) {'<' if spec.descending else '>'} ({v}, {i})")
        sql = f"""
            SELECT {columns}, NULL::float8 AS rank, NULL::bigint AS candidate_count
            FROM files f WHERE {" AND ".join(where)}
            ORDER BY {column} {direction}, f.file_id {direction}
            LIMIT {limit}
        """
    rows = await conn.fetch(sql, *p.values)
    more = len(rows) > spec.limit
    rows = rows[: spec.limit]
    items = [_summary(row, with_rank=spec.sort == "relevance") for row in rows]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        value = last["rank"] if spec.sort == "relevance" else last[_SORT_COLUMN[spec.sort]]
        next_cursor = spec.encode_cursor(value, last["file_id"])
    capped = (
        bool(rows)
        and rows[0]["candidate_count"] is not None
        and (rows[0]["candidate_count"] >= rank_candidates)
    )
    return SearchPage(items, next_cursor, capped)


def _summary(row: asyncpg.Record, *, with_rank: bool) -> dict[str, Any]:
    item = {c: row[c] for c in _SUMMARY_COLUMNS}
    item["file_id"] = str(item["file_id"])
    item["document_id"] = str(item["document_id"])
    item["tags"] = list(item["tags"])
    if with_rank:
        item["rank"] = row["rank"]
    return item


async def file_row(conn: asyncpg.Connection, file_id: UUID) -> asyncpg.Record | None:
    """A file's row with its element's mode and backend (None if never seen)."""
    return await conn.fetchrow(
        "SELECT f.*, e.mode AS element_mode, e.backend AS element_backend FROM files f "
        "LEFT JOIN elements e ON e.element_id = f.element_id WHERE f.file_id = $1",
        file_id,
    )


VERSION_COLUMNS = (
    "file_id",
    "document_version",
    "original_filename",
    "file_size",
    "checksum",
    "created_at",
    "created_by_id",
    "element_id",
    "retention_policy",
    "legal_hold",
    "deleted_at",
    "deletion_reason",
)


async def document_versions(conn: asyncpg.Connection, file_id: UUID) -> list[dict[str, Any]]:
    """Every version the index knows of the document ``file_id`` belongs to, oldest first,
    deleted ones included (with ``deleted_at``); empty when the file is unknown."""
    columns = ", ".join(f"v.{c}" for c in VERSION_COLUMNS)
    rows = await conn.fetch(
        f"SELECT {columns}, v.document_id FROM files f "
        "JOIN files v ON v.document_id = f.document_id "
        "WHERE f.file_id = $1 ORDER BY v.document_version, v.created_at",
        file_id,
    )
    return [
        {**dict(r), "file_id": str(r["file_id"]), "document_id": str(r["document_id"])}
        for r in rows
    ]


async def upload_row(conn: asyncpg.Connection, file_id: UUID) -> asyncpg.Record | None:
    """An upload's status row, with its file's deletion (``deleted_at`` is null unless deleted)."""
    return await conn.fetchrow(
        "SELECT u.*, f.deleted_at, f.deleted_by, f.deletion_reason FROM uploads u "
        "LEFT JOIN files f ON f.file_id = u.file_id WHERE u.file_id = $1",
        file_id,
    )


async def element_rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every known element."""
    return list(await conn.fetch("SELECT * FROM elements ORDER BY priority NULLS LAST, element_id"))


async def element_row(conn: asyncpg.Connection, element_id: str) -> asyncpg.Record | None:
    """One element."""
    return await conn.fetchrow("SELECT * FROM elements WHERE element_id = $1", element_id)


def sidecar(row: asyncpg.Record) -> dict[str, Any]:
    """The attr.json (v2) view of a file row."""
    return {
        "schema_version": "2.0",
        "file_id": str(row["file_id"]),
        "original_filename": row["original_filename"],
        "storage_filename": row["storage_filename"],
        "file_size": row["file_size"],
        "content_type": row["content_type"],
        "checksum": row["checksum"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "created_by_id": row["created_by_id"],
        "created_by_username": row["created_by_username"],
        "created_by_fullname": row["created_by_fullname"],
        "description": row["description"],
        "version": row["version"],
        "storage_path": row["storage_path"],
        "element_id": row["element_id"],
        "retention_policy": row["retention_policy"],
        "ttl_expires_at": row["ttl_expires_at"],
        "tags": list(row["tags"]),
        "metadata": row["metadata"],
        "custom_attributes": row["custom_attributes"],
        "document_id": str(row["document_id"]),
        "document_version": row["document_version"],
        "retain_until": row["retain_until"],
        "legal_hold": row["legal_hold"],
    }


def json_default(value: Any) -> Any:
    """JSON encoding of datetimes and UUIDs in responses and cache entries."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """Compact JSON with :func:`json_default`."""
    return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"))


async def restore_row(conn: asyncpg.Connection, restore_id: UUID) -> asyncpg.Record | None:
    """One restore, as its facts left it."""
    return await conn.fetchrow("SELECT * FROM restores WHERE restore_id = $1", restore_id)


async def restored_copy(conn: asyncpg.Connection, file_id: UUID) -> asyncpg.Record | None:
    """The file's restored copy that downloads are served from now (None: there is none), with
    where its restore element keeps its files."""
    return await conn.fetchrow(
        "SELECT r.*, e.backend AS restore_backend FROM restores r "
        "LEFT JOIN elements e ON e.element_id = r.restore_element_id "
        "WHERE r.file_id = $1 AND r.status = 'restored' AND r.expires_at > now() "
        "ORDER BY r.expires_at DESC LIMIT 1",
        file_id,
    )
