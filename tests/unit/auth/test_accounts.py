"""Account and secret rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from auth.accounts import (
    Account,
    AccountStatus,
    InvalidAccount,
    SystemAccountProtected,
    check_deletable,
    check_status_change,
    make_client_id,
)
from auth.credentials import (
    SecretHasher,
    SecretPolicyError,
    check_secret_policy,
    generate_secret,
)
from events import Role

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def account(**changes: object) -> Account:
    base = Account(
        id=uuid.uuid4(), name="p", description="", client_id="sa_dev_p_00000000",
        secret_hash="", role=Role.USER, status=AccountStatus.ACTIVE, is_system=False,
        rate_limit=100, secret_expires_at=NOW + timedelta(days=1), last_used_at=None,
        created_at=NOW, updated_at=NOW, deleted_at=None,
    )  # fmt: skip
    return base.with_changes(**changes)


def test_client_id_format() -> None:
    client_id = make_client_id("prod", "ingest-1")
    prefix, _, suffix = client_id.rpartition("_")
    assert prefix == "sa_prod_ingest-1"
    assert len(suffix) == 8
    int(suffix, 16)
    for bad in ("Upper", "with_underscore", "-lead", "x", "a/b", "..", "кириллица"):
        with pytest.raises(InvalidAccount):
            make_client_id("prod", bad)


def test_secret_expiry_makes_an_account_expired() -> None:
    assert account().effective_status(NOW) is AccountStatus.ACTIVE
    assert account(secret_expires_at=NOW).effective_status(NOW) is AccountStatus.EXPIRED
    suspended = account(status=AccountStatus.SUSPENDED, secret_expires_at=NOW)
    assert suspended.effective_status(NOW) is AccountStatus.SUSPENDED


def test_system_accounts_are_protected() -> None:
    system = account(is_system=True)
    with pytest.raises(SystemAccountProtected):
        check_deletable(system)
    with pytest.raises(SystemAccountProtected):
        check_status_change(system, AccountStatus.SUSPENDED)
    check_status_change(system, AccountStatus.ACTIVE)


def test_secret_policy() -> None:
    check_secret_policy("Strong-Secret-With-Digits-0123456789")
    for weak in ("short", "a" * 40, "abcdefghijabcdefghijabcdefghijabcdefghij", "x" * 80,
                 "Has Space In It 0123456789 abcdefghij"):  # fmt: skip
        with pytest.raises(SecretPolicyError):
            check_secret_policy(weak)


def test_generated_secrets_are_long_and_distinct() -> None:
    secrets = {generate_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(len(s) >= 43 for s in secrets)


def test_hasher_refuses_overlong_secrets_without_truncating() -> None:
    hasher = SecretHasher(4)
    hashed = hasher.hash_sync("A" * 72)
    assert hasher.verify_sync("A" * 72, hashed)
    assert not hasher.verify_sync("A" * 72 + "extra", hashed)
    assert not hasher.verify_sync("wrong", hashed)
    assert not hasher.verify_sync("x", "not-a-bcrypt-hash")
