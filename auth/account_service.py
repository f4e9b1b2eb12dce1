"""Account handlers: create, change, delete, rotate, suspend, bootstrap — each with its audit fact.

Every change and its audit event commit in one transaction (transactional outbox).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth import account_store as store
from auth.accounts import (
    Account,
    AccountConflict,
    AccountNotFound,
    AccountStatus,
    InvalidAccount,
    check_deletable,
    check_role_change,
    check_status_change,
    make_client_id,
    validate_name,
)
from auth.audit import AuditTrail
from auth.credentials import SecretHasher, SecretPolicyError, check_secret_policy, generate_secret
from auth.outbox import OutboxMessage, enqueue
from auth.settings import AuthSettings
from events import Role


@dataclass(frozen=True, slots=True)
class AccountWithSecret:
    """An account and its new secret, which is shown to the caller once and stored only hashed."""

    account: Account
    secret: str


class AccountService:
    """Handlers for the accounts admin API and the bootstrap."""

    def __init__(
        self,
        engine: AsyncEngine,
        hasher: SecretHasher,
        audit: AuditTrail,
        settings: AuthSettings,
        *,
        env: str,
        clock: Callable[[], datetime],
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._audit = audit
        self._settings = settings
        self._env = env
        self._clock = clock
        self._on_commit = on_commit

    async def _emit(self, conn: AsyncConnection, *messages: OutboxMessage) -> None:
        await enqueue(conn, messages, self._clock())

    async def get(self, account_id: uuid.UUID) -> Account:
        async with self._engine.connect() as conn:
            account = await store.by_id(conn, account_id)
        if account is None:
            raise AccountNotFound(f"no account with id {account_id}")
        return account

    async def list(
        self, *, status: AccountStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[Account]:
        async with self._engine.connect() as conn:
            return await store.listing(conn, status=status, limit=limit, offset=offset)

    async def create(
        self,
        *,
        name: str,
        role: Role,
        actor: str | None,
        description: str = "",
        rate_limit: int | None = None,
        is_system: bool = False,
        secret: str | None = None,
    ) -> AccountWithSecret:
        validate_name(name)
        if secret is None:
            secret = generate_secret()
        else:
            self._check_policy(secret)
        now = self._clock()
        account = Account(
            id=uuid.uuid4(),
            name=name,
            description=description,
            client_id=make_client_id(self._env, name),
            secret_hash=await self._hasher.hash(secret),
            role=role,
            status=AccountStatus.ACTIVE,
            is_system=is_system,
            rate_limit=rate_limit or self._settings.default_rate_limit,
            secret_expires_at=now + self._settings.secret_lifetime,
            last_used_at=None,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        try:
            async with self._engine.begin() as conn:
                await store.insert_account(conn, account)
                await self._emit(conn, self._fact("account.created", account, actor))
        except IntegrityError as exc:
            raise AccountConflict(f"an account named {name!r} already exists") from exc
        self._on_commit()
        return AccountWithSecret(account, secret)

    async def update(
        self,
        account_id: uuid.UUID,
        *,
        actor: str | None,
        description: str | None = None,
        role: Role | None = None,
        rate_limit: int | None = None,
    ) -> Account:
        async with self._engine.begin() as conn:
            account = await self._live(conn, account_id)
            changes: dict[str, Any] = {}
            if description is not None and description != account.description:
                changes["description"] = description
            if role is not None and role is not account.role:
                check_role_change(account, role)
                changes["role"] = role
            if rate_limit is not None and rate_limit != account.rate_limit:
                if rate_limit <= 0:
                    raise InvalidAccount("rate_limit must be positive")
                changes["rate_limit"] = rate_limit
            if not changes:
                return account
            updated = account.with_changes(updated_at=self._clock(), **changes)
            await store.save(conn, updated)
            shown = {k: (v.value if isinstance(v, Role) else v) for k, v in changes.items()}
            await self._emit(conn, self._fact("account.updated", updated, actor, shown))
        self._on_commit()
        return updated

    async def delete(self, account_id: uuid.UUID, *, actor: str | None) -> Account:
        async with self._engine.begin() as conn:
            account = await self._live(conn, account_id)
            check_deletable(account)
            now = self._clock()
            deleted = account.with_changes(
                status=AccountStatus.DELETED, deleted_at=now, updated_at=now
            )
            await store.save(conn, deleted)
            await self._emit(conn, self._fact("account.deleted", deleted, actor))
        self._on_commit()
        return deleted

    async def set_status(
        self, account_id: uuid.UUID, target: AccountStatus, *, actor: str | None
    ) -> Account:
        async with self._engine.begin() as conn:
            account = await self._live(conn, account_id)
            check_status_change(account, target)
            if account.status is target:
                return account
            changed = account.with_changes(status=target, updated_at=self._clock())
            await store.save(conn, changed)
            action = (
                "account.suspended" if target is AccountStatus.SUSPENDED else "account.activated"
            )
            await self._emit(conn, self._fact(action, changed, actor))
        self._on_commit()
        return changed

    async def rotate_secret(
        self, account_id: uuid.UUID, *, actor: str | None, secret: str | None = None
    ) -> AccountWithSecret:
        """A new secret, shown once; the previous one keeps working for the grace window."""
        chosen = secret is not None
        if secret is None:
            secret = generate_secret()
        else:
            self._check_policy(secret)
        new_hash = await self._hasher.hash(secret)
        async with self._engine.begin() as conn:
            account = await self._live(conn, account_id)
            if chosen:
                recent = await store.recent_secret_hashes(
                    conn, account.id, self._settings.secret_history
                )
                for old in recent:
                    if await self._hasher.verify(secret, old):
                        raise InvalidAccount(
                            f"that secret was one of the last {self._settings.secret_history} "
                            "secrets of this account; choose a new one"
                        )
            now = self._clock()
            await store.replace_secret(
                conn, account.id, new_hash, now, now + self._settings.secret_grace_period
            )
            status = (
                AccountStatus.ACTIVE if account.status is AccountStatus.EXPIRED else account.status
            )
            rotated = account.with_changes(
                secret_hash=new_hash,
                status=status,
                secret_expires_at=now + self._settings.secret_lifetime,
                updated_at=now,
            )
            await store.save(conn, rotated)
            details = {"grace_until": (now + self._settings.secret_grace_period).isoformat()}
            await self._emit(conn, self._fact("account.secret_rotated", rotated, actor, details))
        self._on_commit()
        return AccountWithSecret(rotated, secret)

    async def bootstrap_admin(self) -> AccountWithSecret | None:
        """Create the system admin named in settings unless it exists; idempotent across replicas.

        Returns the account and secret only when this call created it.
        """
        name = self._settings.bootstrap_admin_name
        configured = self._settings.bootstrap_admin_secret
        async with self._engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('artstore.auth.bootstrap'))")
            )
            if await store.by_name(conn, name) is not None:
                return None
            secret = configured.get_secret_value() if configured else generate_secret()
            now = self._clock()
            account = Account(
                id=uuid.uuid4(),
                name=validate_name(name),
                description="initial system administrator",
                client_id=make_client_id(self._env, name),
                secret_hash=await self._hasher.hash(secret),
                role=Role.ADMIN,
                status=AccountStatus.ACTIVE,
                is_system=True,
                rate_limit=self._settings.default_rate_limit,
                secret_expires_at=now + self._settings.secret_lifetime,
                last_used_at=None,
                created_at=now,
                updated_at=now,
                deleted_at=None,
            )
            await store.insert_account(conn, account)
            await self._emit(
                conn, self._fact("account.created", account, None, {"bootstrap": True})
            )
        self._on_commit()
        return AccountWithSecret(account, secret)

    async def refused(
        self,
        action: str,
        *,
        account: str | None,
        actor: str | None,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        """Audit a refused account change (outcome ``failure``) in a transaction of its own.

        ``account`` is the account id the request named, if any: the subject is that account's
        client id when the id names one (as for the changes themselves), else the id as given.
        """
        subject = "accounts"
        async with self._engine.begin() as conn:
            if account is not None:
                subject = account
                try:
                    found = await store.by_id(conn, uuid.UUID(account))
                except ValueError:
                    found = None  # not an account id: the subject is what the request said
                if found is not None:
                    subject = found.client_id
                    details = {"account_id": str(found.id), **details}
            await self._emit(
                conn,
                self._audit.record(
                    action,
                    subject=subject,
                    outcome="failure",
                    actor=actor,
                    reason=reason,
                    details=details,
                ),
            )
        self._on_commit()

    async def _live(self, conn: AsyncConnection, account_id: uuid.UUID) -> Account:
        account = await store.by_id(conn, account_id, lock=True)
        if account is None or account.status is AccountStatus.DELETED:
            raise AccountNotFound(f"no account with id {account_id}")
        return account

    @staticmethod
    def _check_policy(secret: str) -> None:
        try:
            check_secret_policy(secret)
        except SecretPolicyError as exc:
            raise InvalidAccount(str(exc)) from exc

    def _fact(
        self,
        action: str,
        account: Account,
        actor: str | None,
        details: dict[str, Any] | None = None,
    ) -> OutboxMessage:
        return self._audit.record(
            action,
            subject=account.client_id,
            actor=actor,
            details={
                "account_id": str(account.id),
                "name": account.name,
                "role": account.role.value,
                **(details or {}),
            },
        )
