"""Which audit records change what an account's webhooks do: the auth service's successful
suspensions, activations and deletions, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from events import audit_event
from notifications.accounts import ACCOUNT_SOURCE, account_change


def recorded(action: str, **fields: Any) -> Any:
    values: dict[str, Any] = {"subject": "sa_alice_1", "source": ACCOUNT_SOURCE, "actor": "sa_a"}
    values.update(fields)
    return audit_event(action, **values)


@pytest.mark.parametrize("action", ["account.suspended", "account.activated", "account.deleted"])
def test_the_auth_services_account_changes_count(action: str) -> None:
    change = account_change(recorded(action))
    assert change is not None
    assert (change.client_id, change.action, change.actor) == ("sa_alice_1", action, "sa_a")


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("account.deleted", {"outcome": "failure"}),  # a refused deletion changed nothing
        ("account.deleted", {"source": "artstore-facade"}),  # only the auth service's count
        ("account.created", {}),
        ("account.secret_rotated", {}),
        ("webhook.deleted", {"source": "artstore-notifications"}),
    ],
)
def test_anything_else_changes_nothing(action: str, fields: dict[str, Any]) -> None:
    assert account_change(recorded(action, **fields)) is None
