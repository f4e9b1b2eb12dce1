# The table name is a constant; every value is a bound parameter.
# ruff: noqa: S608
"""Which documents exist, who owns them and which version numbers they have used: the one
place every element asks before it stores a new version.

A version (an upload with ``version_of``) may be stored on any element of its class, not
necessarily the one holding the version before it, and two versions of one document may be
uploaded at once (to two elements with spread placement, or to an edit and an rw element). So
the version number is *reserved* here, in PostgreSQL (table ``storage_document_versions``,
beside the upload claims), before the sidecar that records it is written:

- the named file must be a stored file of a document the caller may change (its own, or any
  for an admin); otherwise ``unknown_document``, the same answer whether the file does not
  exist or belongs to someone else, so nothing is revealed;
- the document must have a version that is not deleted, else ``document_deleted``;
- the number is the highest the document ever used + 1, taken under a lock on the document,
  and the pair (document, version) is unique: two concurrent versions get two numbers, in the
  order they reached the lock, never the same one. A reservation whose upload is rejected is
  released; one left by a crash is kept for the upload's redelivery (a reservation is the
  file id's: asking again returns the same number). Numbers can therefore have gaps, but are
  never reused and never collide.

The sidecar is the source of truth (``document_id``, ``document_version``); this table is an
index of the sidecars that every worker re-fills from its own element at start
(:meth:`DocumentRegistry.sync`), so it is rebuilt from the elements alone. See docs/lifecycle.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg

from auth import may_change_file
from events import RejectionReason
from storage_workers.claims import (
    CONNECTION_ERRORS,
    ClaimsUnavailable,
    open_pool,
    postgres_dsn,
)
from storage_workers.handlers import DocumentLink, Reject


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A stored file as the registry knows it."""

    file_id: UUID
    document_id: UUID
    version: int
    uploaded_by: str


class DocumentRegistry(Protocol):
    """The shared registry of documents and their version numbers."""

    async def reserve(
        self, *, file_id: UUID, version_of: UUID, client_id: str, role: str, element_id: str
    ) -> DocumentLink | Reject:
        """The document and version number ``file_id`` will have as the next version of the
        document ``version_of`` belongs to, or why it may not be one."""
        ...

    async def stored(self, element_id: str, files: Sequence[DocumentFile]) -> None:
        """Record files durable on ``element_id`` (new documents and versions alike)."""
        ...

    async def release(self, file_ids: Sequence[UUID]) -> None:
        """Drop reservations whose uploads were not stored."""
        ...

    async def deleted(self, file_ids: Sequence[UUID]) -> None:
        """Record deleted files."""
        ...

    async def sync(
        self, element_id: str, files: Sequence[DocumentFile], deleted: Sequence[UUID]
    ) -> None:
        """Record what an element holds and has deleted (at start: the registry is an index
        of the sidecars)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def unknown_document(version_of: UUID, client_id: str) -> Reject:
    """The refusal of a ``version_of`` that is unknown, not stored yet, or not the caller's:
    the same words in every case."""
    return Reject(
        RejectionReason.UNKNOWN_DOCUMENT,
        f"no stored document with file {version_of} that {client_id} may add a version to: "
        "version_of must name a stored file of a document this account uploaded (an admin's: "
        "any document)",
    )


def deleted_document(version_of: UUID, document_id: UUID) -> Reject:
    """The refusal of a version of a document none of whose versions is left."""
    return Reject(
        RejectionReason.DOCUMENT_DELETED,
        f"document {document_id} (of file {version_of}) was deleted: none of its versions is "
        "left, so it takes no new version; upload the file as a new document instead",
    )


_TABLE = "storage_document_versions"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    file_id uuid PRIMARY KEY,
    document_id uuid NOT NULL,
    version integer NOT NULL,
    element_id text NOT NULL,
    uploaded_by text NOT NULL,
    state text NOT NULL CHECK (state IN ('reserved', 'stored', 'deleted')),
    changed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, version)
);
"""


class PostgresDocuments:
    """:class:`DocumentRegistry` in PostgreSQL. Every failure to reach the database is
    :class:`~storage_workers.claims.ClaimsUnavailable`: the batch is read again later."""

    def __init__(self, database_url: str, *, timeout_s: float = 10.0) -> None:
        self._dsn = postgres_dsn(database_url)
        self._timeout = timeout_s
        self._pool: asyncpg.Pool | None = None

    async def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await open_pool(
                self._dsn, self._timeout, "artstore-storage-documents", _TABLE, _SCHEMA
            )
        return self._pool

    async def _acquire(self) -> asyncpg.Pool:
        try:
            return await self._connected()
        except CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc

    async def reserve(
        self, *, file_id: UUID, version_of: UUID, client_id: str, role: str, element_id: str
    ) -> DocumentLink | Reject:
        pool = await self._acquire()
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await _reserve(conn, file_id, version_of, client_id, role, element_id)
        except CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc

    async def stored(self, element_id: str, files: Sequence[DocumentFile]) -> None:
        await self._record(element_id, files, [])

    async def sync(
        self, element_id: str, files: Sequence[DocumentFile], deleted: Sequence[UUID]
    ) -> None:
        await self._record(element_id, files, deleted)

    async def _record(
        self, element_id: str, files: Sequence[DocumentFile], deleted: Sequence[UUID]
    ) -> None:
        if not files and not deleted:
            return
        pool = await self._acquire()
        try:
            async with pool.acquire() as conn, conn.transaction():
                ids = [f.file_id for f in files]
                # A file already known (reserved, or stored before) keeps its row; a pair
                # (document, version) already taken is left to the row that has it.
                await conn.execute(
                    f"INSERT INTO {_TABLE} (file_id, document_id, version, element_id, "
                    "uploaded_by, state) SELECT u.f, u.d, u.v, $5, u.o, 'stored' FROM "
                    "unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[]) AS u(f, d, v, o) "
                    "ON CONFLICT DO NOTHING",
                    ids,
                    [f.document_id for f in files],
                    [f.version for f in files],
                    [f.uploaded_by for f in files],
                    element_id,
                )
                await conn.execute(
                    f"UPDATE {_TABLE} SET state = 'stored', element_id = $2, changed_at = now() "
                    "WHERE file_id = ANY($1::uuid[]) AND state = 'reserved'",
                    ids,
                    element_id,
                )
                if deleted:
                    await self._mark_deleted(conn, deleted)
        except CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc

    async def release(self, file_ids: Sequence[UUID]) -> None:
        if not file_ids:
            return
        pool = await self._acquire()
        try:
            await pool.execute(
                f"DELETE FROM {_TABLE} WHERE file_id = ANY($1::uuid[]) AND state = 'reserved'",
                list(file_ids),
            )
        except CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc

    async def deleted(self, file_ids: Sequence[UUID]) -> None:
        if not file_ids:
            return
        pool = await self._acquire()
        try:
            async with pool.acquire() as conn:
                await self._mark_deleted(conn, file_ids)
        except CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from exc

    @staticmethod
    async def _mark_deleted(conn: asyncpg.Connection, file_ids: Sequence[UUID]) -> None:
        await conn.execute(
            f"UPDATE {_TABLE} SET state = 'deleted', changed_at = now() "
            "WHERE file_id = ANY($1::uuid[]) AND state <> 'deleted'",
            list(file_ids),
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _reserve(
    conn: asyncpg.Connection,
    file_id: UUID,
    version_of: UUID,
    client_id: str,
    role: str,
    element_id: str,
) -> DocumentLink | Reject:
    mine = await conn.fetchrow(
        f"SELECT document_id, version FROM {_TABLE} WHERE file_id = $1", file_id
    )
    if mine is not None:  # a redelivery: the number reserved (or stored) before
        return DocumentLink(mine["document_id"], mine["version"])
    named = await conn.fetchrow(
        f"SELECT document_id, state FROM {_TABLE} WHERE file_id = $1", version_of
    )
    if named is None or named["state"] == "reserved":
        return unknown_document(version_of, client_id)
    document_id: UUID = named["document_id"]
    # One version at a time per document: the next number is decided under this lock.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"document:{document_id}")
    row = await conn.fetchrow(
        f"SELECT (SELECT uploaded_by FROM {_TABLE} WHERE document_id = $1 "
        "AND state <> 'reserved' ORDER BY version LIMIT 1) AS owner, "
        f"EXISTS (SELECT 1 FROM {_TABLE} WHERE document_id = $1 AND state = 'stored') AS live, "
        f"(SELECT coalesce(max(version), 0) + 1 FROM {_TABLE} WHERE document_id = $1) AS next",
        document_id,
    )
    assert row is not None
    if not may_change_file(role, client_id, row["owner"] or ""):
        return unknown_document(version_of, client_id)
    if not row["live"]:
        return deleted_document(version_of, document_id)
    await conn.execute(
        f"INSERT INTO {_TABLE} (file_id, document_id, version, element_id, uploaded_by, state) "
        "VALUES ($1, $2, $3, $4, $5, 'reserved')",
        file_id,
        document_id,
        row["next"],
        element_id,
        client_id,
    )
    return DocumentLink(document_id, row["next"])


def _unavailable(exc: BaseException) -> ClaimsUnavailable:
    why = str(exc) or type(exc).__name__
    return ClaimsUnavailable(f"the document registry (PostgreSQL) is unreachable: {why}")


class LocalDocuments:
    """:class:`DocumentRegistry` of one element alone, in memory, for a deployment without
    upload claims (one element per class): a version's document must then be on the element
    that stores it. Filled from the element's sidecars at start."""

    def __init__(self) -> None:
        self._rows: dict[UUID, tuple[DocumentFile, str]] = {}

    async def reserve(
        self, *, file_id: UUID, version_of: UUID, client_id: str, role: str, element_id: str
    ) -> DocumentLink | Reject:
        mine = self._rows.get(file_id)
        if mine is not None:
            return DocumentLink(mine[0].document_id, mine[0].version)
        named = self._rows.get(version_of)
        if named is None or named[1] == "reserved":
            return unknown_document(version_of, client_id)
        document_id = named[0].document_id
        rows = [r for r in self._rows.values() if r[0].document_id == document_id]
        known = sorted((r for r in rows if r[1] != "reserved"), key=lambda r: r[0].version)
        owner = known[0][0].uploaded_by if known else ""
        if not may_change_file(role, client_id, owner):
            return unknown_document(version_of, client_id)
        if not any(state == "stored" for _, state in rows):
            return deleted_document(version_of, document_id)
        version = max(r[0].version for r in rows) + 1
        self._rows[file_id] = (DocumentFile(file_id, document_id, version, client_id), "reserved")
        return DocumentLink(document_id, version)

    async def stored(self, element_id: str, files: Sequence[DocumentFile]) -> None:
        for f in files:
            current = self._rows.get(f.file_id)
            if current is None or current[1] == "reserved":
                self._rows[f.file_id] = (f, "stored")

    async def release(self, file_ids: Sequence[UUID]) -> None:
        for file_id in file_ids:
            if file_id in self._rows and self._rows[file_id][1] == "reserved":
                del self._rows[file_id]

    async def deleted(self, file_ids: Sequence[UUID]) -> None:
        for file_id in file_ids:
            if file_id in self._rows:
                self._rows[file_id] = (self._rows[file_id][0], "deleted")

    async def sync(
        self, element_id: str, files: Sequence[DocumentFile], deleted: Sequence[UUID]
    ) -> None:
        await self.stored(element_id, files)
        await self.deleted(deleted)

    async def close(self) -> None:
        return None
