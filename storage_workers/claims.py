# The table name is a constant; every value is a bound parameter.
# ruff: noqa: S608
"""Which element holds an upload: one claim per file_id, in a place every element shares.

An upload is stored on exactly one element. A batch stored but not yet committed can be
redelivered to another element (a kill, a rebalance, a hand-over); that element's own
catalogue knows nothing of it. So before an element writes an upload it *claims* the file_id
here, and once the file is durable it records the stored file in the claim (before the fact
is announced). An element offered an upload that another element has claimed:

- stored there: re-announces the FileStored fact from the claim, writes nothing;
- still being written there: leaves it on the topic and retries later, unless the claimant
  is gone (no heartbeat within the peer timeout) or its claim is older than the lease: then
  it takes the claim over.

The claims live in PostgreSQL (table ``storage_upload_claims`` in the deployment's database):
durable across restarts, transactional, already run by every deployment. See docs/storage.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from events import FileRecord


class ClaimsUnavailable(Exception):
    """The claim registry can't be reached now. Not a reason to dead-letter anything: the
    batch goes back to its topic and is read again until the registry answers (an outage)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds (or is writing) an upload."""

    file_id: UUID
    element_id: str
    checksum: str
    claimed_at: datetime
    stored: FileRecord | None
    """The stored file as announced, once it is durable on ``element_id``."""


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """A durable upload to record in its claim."""

    file_id: UUID
    checksum: str
    record: FileRecord


class UploadClaims(Protocol):
    """The shared registry of which element holds each upload."""

    async def claim(self, element_id: str, wanted: Mapping[UUID, str]) -> dict[UUID, Claim]:
        """Claim each file_id (-> checksum) unless claimed already; every file's claim."""
        ...

    async def take_over(self, element_id: str, file_id: UUID, previous: Claim) -> bool:
        """Move an unfinished claim from ``previous.element_id`` to this element."""
        ...

    async def stored(self, element_id: str, uploads: Sequence[StoredUpload]) -> list[UUID]:
        """Record durable uploads; returns those claimed by another element meanwhile."""
        ...

    async def release(self, element_id: str, file_ids: Sequence[UUID]) -> None:
        """Drop this element's unfinished claims (rolled back, rejected, handed back)."""
        ...

    async def unfinished(self, element_id: str) -> list[UUID]:
        """This element's claims that were never recorded as stored."""
        ...

    async def ping(self) -> None:
        """Return when the registry answers; raise :class:`ClaimsUnavailable` when not."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


_TABLE = "storage_upload_claims"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_TABLE} (
    file_id uuid PRIMARY KEY,
    element_id text NOT NULL,
    checksum text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    stored text,  -- the FileRecord as JSON text (jsonb refuses NUL characters)
    stored_at timestamptz
);
CREATE INDEX IF NOT EXISTS {_TABLE}_unfinished ON {_TABLE} (element_id) WHERE stored IS NULL;
"""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # What a connection left mid-operation by a server that died (SIGKILL) raises next.
    asyncpg.InternalClientError,
)


def postgres_dsn(database_url: str) -> str:
    """An asyncpg DSN from the deployment's SQLAlchemy-style database URL."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if database_url.startswith(prefix):
            return "postgresql://" + database_url[len(prefix) :]
    return database_url


async def open_pool(
    dsn: str, timeout_s: float, application: str, table: str, schema: str
) -> asyncpg.Pool:
    """A small pool to the storage workers' own table ``table``, created (``schema``) on the
    first connection if it is missing. A pool whose first connection fails is not kept: the
    next call makes a new one."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=2,
        timeout=timeout_s,
        command_timeout=timeout_s,
        server_settings={"application_name": application},
    )
    assert pool is not None
    try:
        async with pool.acquire() as conn, conn.transaction():
            # Two workers starting together must not race to create the table.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", table)
            await conn.execute(schema)
    except BaseException:
        pool.terminate()
        raise
    return pool


class PostgresClaims:
    """:class:`UploadClaims` in PostgreSQL. Connects lazily; every failure to reach the
    database is :class:`ClaimsUnavailable` (retried by the caller), never a lost upload."""

    def __init__(self, database_url: str, *, timeout_s: float = 10.0) -> None:
        self._dsn = postgres_dsn(database_url)
        self._timeout = timeout_s
        self._pool: asyncpg.Pool | None = None

    async def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await open_pool(
                self._dsn, self._timeout, "artstore-storage-claims", _TABLE, _SCHEMA
            )
        return self._pool

    async def _run(self, sql: str, *args: object) -> list[asyncpg.Record]:
        try:
            pool = await self._connected()
            async with pool.acquire() as conn:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
                return rows
        except CONNECTION_ERRORS as exc:
            why = str(exc) or type(exc).__name__
            raise ClaimsUnavailable(
                f"the upload claim registry (PostgreSQL) is unreachable: {why}"
            ) from exc

    async def ping(self) -> None:
        await self._run("SELECT 1")

    async def claim(self, element_id: str, wanted: Mapping[UUID, str]) -> dict[UUID, Claim]:
        if not wanted:
            return {}
        ids = list(wanted)
        rows = await self._run(
            f"WITH new AS (INSERT INTO {_TABLE} (file_id, element_id, checksum) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) "
            "ON CONFLICT (file_id) DO NOTHING RETURNING *) "
            f"SELECT * FROM new UNION ALL SELECT * FROM {_TABLE} "
            "WHERE file_id = ANY($1::uuid[]) AND file_id NOT IN (SELECT file_id FROM new)",
            ids,
            [element_id] * len(ids),
            [wanted[i] for i in ids],
        )
        return {r["file_id"]: _claim(r) for r in rows}

    async def take_over(self, element_id: str, file_id: UUID, previous: Claim) -> bool:
        rows = await self._run(
            f"UPDATE {_TABLE} SET element_id = $2, claimed_at = now() "
            "WHERE file_id = $1 AND element_id = $3 AND claimed_at = $4 AND stored IS NULL "
            "RETURNING file_id",
            file_id,
            element_id,
            previous.element_id,
            previous.claimed_at,
        )
        return bool(rows)

    async def stored(self, element_id: str, uploads: Sequence[StoredUpload]) -> list[UUID]:
        if not uploads:
            return []
        ids = [u.file_id for u in uploads]
        rows = await self._run(
            f"INSERT INTO {_TABLE} AS c (file_id, element_id, checksum, stored, stored_at) "
            "SELECT u.file_id, $2, u.checksum, u.stored, now() "
            "FROM unnest($1::uuid[], $3::text[], $4::text[]) AS u(file_id, checksum, stored) "
            "ON CONFLICT (file_id) DO UPDATE SET stored = EXCLUDED.stored, stored_at = now() "
            "WHERE c.element_id = EXCLUDED.element_id RETURNING c.file_id",
            ids,
            element_id,
            [u.checksum for u in uploads],
            [u.record.model_dump_json() for u in uploads],
        )
        recorded = {r["file_id"] for r in rows}
        return [i for i in ids if i not in recorded]

    async def release(self, element_id: str, file_ids: Sequence[UUID]) -> None:
        if file_ids:
            await self._run(
                f"DELETE FROM {_TABLE} WHERE file_id = ANY($1::uuid[]) AND element_id = $2 "
                "AND stored IS NULL RETURNING file_id",
                list(file_ids),
                element_id,
            )

    async def unfinished(self, element_id: str) -> list[UUID]:
        rows = await self._run(
            f"SELECT file_id FROM {_TABLE} WHERE element_id = $1 AND stored IS NULL",
            element_id,
        )
        return [r["file_id"] for r in rows]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _claim(row: asyncpg.Record) -> Claim:
    stored = row["stored"]
    return Claim(
        file_id=row["file_id"],
        element_id=row["element_id"],
        checksum=row["checksum"],
        claimed_at=row["claimed_at"],
        stored=FileRecord.model_validate_json(stored) if stored is not None else None,
    )
