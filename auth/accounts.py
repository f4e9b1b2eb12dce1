"""Service accounts: the domain model and the rules about them. No I/O here."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from events import Role

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,47}$")
ENV_PATTERN = re.compile(r"^[a-z0-9]{1,16}$")


class AccountStatus(StrEnum):
    """Lifecycle of an account; ``deleted`` is a soft delete that keeps the row for audit."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    DELETED = "deleted"


class AccountError(Exception):
    """An account operation that can't be done, with the HTTP status that says why."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccountNotFound(AccountError):
    status_code = 404


class AccountConflict(AccountError):
    status_code = 409


class SystemAccountProtected(AccountError):
    status_code = 409


class InvalidAccount(AccountError):
    status_code = 422


@dataclass(frozen=True, slots=True)
class Account:
    """A machine client of ArtStore."""

    id: uuid.UUID
    name: str
    description: str
    client_id: str
    secret_hash: str
    role: Role
    status: AccountStatus
    is_system: bool
    rate_limit: int
    secret_expires_at: datetime
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    def effective_status(self, now: datetime) -> AccountStatus:
        """An active account whose secret has passed its expiry counts as expired."""
        if self.status is AccountStatus.ACTIVE and self.secret_expires_at <= now:
            return AccountStatus.EXPIRED
        return self.status

    def view(self, now: datetime) -> dict[str, Any]:
        """What the admin API shows: everything but the secret hash."""
        return {
            "id": str(self.id),
            "name": self.name,
            "description": self.description,
            "client_id": self.client_id,
            "role": self.role.value,
            "status": self.effective_status(now).value,
            "is_system": self.is_system,
            "rate_limit": self.rate_limit,
            "secret_expires_at": self.secret_expires_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
        }

    def with_changes(self, **changes: Any) -> Account:
        """A copy with some fields changed."""
        return replace(self, **changes)


def validate_name(name: str) -> str:
    """Account names become part of client ids and file names: lower-case letters, digits, '-'."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidAccount(
            f"account name {name!r} must be 2-48 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return name


def make_client_id(env: str, name: str) -> str:
    """``sa_<env>_<name>_<8 hex>`` (SPEC §4)."""
    if not ENV_PATTERN.fullmatch(env):
        raise InvalidAccount(f"environment name {env!r} must be 1-16 characters of a-z and 0-9")
    return f"sa_{env}_{validate_name(name)}_{secrets.token_hex(4)}"


def check_deletable(account: Account) -> None:
    """System accounts are never deleted (the service would lock itself out)."""
    if account.is_system:
        raise SystemAccountProtected(f"account {account.name} is a system account")
    if account.status is AccountStatus.DELETED:
        raise AccountNotFound(f"account {account.name} is already deleted")


def check_status_change(account: Account, target: AccountStatus) -> None:
    """Suspend and activate; system accounts can't be suspended, deleted ones can't return."""
    if account.status is AccountStatus.DELETED:
        raise AccountNotFound(f"account {account.name} is deleted")
    if target is AccountStatus.SUSPENDED and account.is_system:
        raise SystemAccountProtected(f"account {account.name} is a system account")
    if target not in (AccountStatus.ACTIVE, AccountStatus.SUSPENDED):
        raise InvalidAccount(f"status can only be set to active or suspended, not {target}")


def check_role_change(account: Account, role: Role) -> None:
    """A system admin keeps its role, or nobody could administer accounts."""
    if account.is_system and role is not account.role:
        raise SystemAccountProtected(f"the role of system account {account.name} is fixed")
