"""PostgreSQL adapter for service accounts and their secret history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.accounts import Account, AccountStatus
from auth.db import account_secrets, accounts
from events import Role


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        name=row.name,
        description=row.description,
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        role=Role(row.role),
        status=AccountStatus(row.status),
        is_system=row.is_system,
        rate_limit=row.rate_limit,
        secret_expires_at=row.secret_expires_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


async def by_client_id(conn: AsyncConnection, client_id: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.client_id == client_id))).first()
    return _account(row) if row else None


async def by_id(
    conn: AsyncConnection, account_id: uuid.UUID, *, lock: bool = False
) -> Account | None:
    query = select(accounts).where(accounts.c.id == account_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _account(row) if row else None


async def by_name(conn: AsyncConnection, name: str) -> Account | None:
    row = (
        await conn.execute(
            select(accounts).where(
                accounts.c.name == name, accounts.c.status != AccountStatus.DELETED.value
            )
        )
    ).first()
    return _account(row) if row else None


async def listing(
    conn: AsyncConnection, *, status: AccountStatus | None, limit: int, offset: int
) -> list[Account]:
    query = select(accounts).order_by(accounts.c.created_at, accounts.c.id)
    if status is not None:
        query = query.where(accounts.c.status == status.value)
    rows = (await conn.execute(query.limit(limit).offset(offset))).all()
    return [_account(r) for r in rows]


async def insert_account(conn: AsyncConnection, account: Account) -> None:
    await conn.execute(
        insert(accounts).values(
            id=account.id,
            name=account.name,
            description=account.description,
            client_id=account.client_id,
            secret_hash=account.secret_hash,
            role=account.role.value,
            status=account.status.value,
            is_system=account.is_system,
            rate_limit=account.rate_limit,
            secret_expires_at=account.secret_expires_at,
            last_used_at=None,
            created_at=account.created_at,
            updated_at=account.updated_at,
            deleted_at=None,
        )
    )
    await conn.execute(
        insert(account_secrets).values(
            account_id=account.id, secret_hash=account.secret_hash, created_at=account.created_at
        )
    )


async def save(conn: AsyncConnection, account: Account) -> None:
    """Write the mutable fields of ``account``."""
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == account.id)
        .values(
            description=account.description,
            secret_hash=account.secret_hash,
            role=account.role.value,
            status=account.status.value,
            rate_limit=account.rate_limit,
            secret_expires_at=account.secret_expires_at,
            updated_at=account.updated_at,
            deleted_at=account.deleted_at,
        )
    )


async def recent_secret_hashes(
    conn: AsyncConnection, account_id: uuid.UUID, limit: int
) -> Sequence[str]:
    rows = await conn.execute(
        select(account_secrets.c.secret_hash)
        .where(account_secrets.c.account_id == account_id)
        .order_by(account_secrets.c.id.desc())
        .limit(limit)
    )
    return [r.secret_hash for r in rows]


async def grace_hashes(conn: AsyncConnection, account_id: uuid.UUID, now: datetime) -> list[str]:
    """Hashes of rotated-out secrets still inside their grace window."""
    rows = await conn.execute(
        select(account_secrets.c.secret_hash)
        .where(
            account_secrets.c.account_id == account_id,
            account_secrets.c.valid_until.is_not(None),
            account_secrets.c.valid_until > now,
        )
        .order_by(account_secrets.c.id.desc())
    )
    return [r.secret_hash for r in rows]


async def replace_secret(
    conn: AsyncConnection,
    account_id: uuid.UUID,
    new_hash: str,
    now: datetime,
    grace_until: datetime,
) -> None:
    """The current secret enters its grace window; older ones end now; ``new_hash`` is current."""
    await conn.execute(
        update(account_secrets)
        .where(
            account_secrets.c.account_id == account_id,
            account_secrets.c.valid_until.is_not(None),
            account_secrets.c.valid_until > now,
        )
        .values(valid_until=now)
    )
    await conn.execute(
        update(account_secrets)
        .where(account_secrets.c.account_id == account_id, account_secrets.c.valid_until.is_(None))
        .values(valid_until=grace_until)
    )
    await conn.execute(
        insert(account_secrets).values(account_id=account_id, secret_hash=new_hash, created_at=now)
    )


async def touch(conn: AsyncConnection, account_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(update(accounts).where(accounts.c.id == account_id).values(last_used_at=now))
