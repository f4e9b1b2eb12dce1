# SQL here is constant text; values travel as parameters.
"""What an account's life means for its webhooks.

The auth service records every change of an account on ``artstore.audit``; the dispatcher
reads those records beside the facts, and applies each in the transaction that moves its
positions (so each is applied once, in the order the account changed):

- ``account.suspended``: the account's deliveries are held, pending ones and new ones alike;
  none is attempted while it is suspended;
- ``account.activated``: they go out again, from where they were;
- ``account.deleted``: its webhooks are deleted and their pending deliveries cancelled, each
  deletion audited (``webhook.deleted``, reason ``account_deleted``); nothing more is sent to
  the addresses a deleted account named. The account is remembered as deleted: a token it was
  issued before stays good until it expires, and a webhook it registers with it is refused
  (``AccountDeleted``). The deletion takes the account's registration lock
  (``registration_lock``), so a registration racing it is either refused or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from events import TopicNames
from events.envelope import Envelope
from events.models.audit import AuditRecorded
from notifications.registrations import cancel_pending, registration_lock, write_audit
from notifications.targets import audited

ACCOUNT_SOURCE = "artstore-auth"
"""The only service whose audit records change an account."""
SUSPENDED, ACTIVATED, DELETED = "account.suspended", "account.activated", "account.deleted"
ACCOUNT_ACTIONS = frozenset({SUSPENDED, ACTIVATED, DELETED})
MARK = b'"account.'
"""Bytes every account change's record holds: records without them are not decoded."""


@dataclass(frozen=True, slots=True)
class AccountChange:
    """One change of an account that its webhooks follow."""

    client_id: str
    action: str
    at: datetime
    actor: str | None
    """Who changed the account (an admin's client id), as the auth service recorded it."""


def account_change(envelope: Envelope[Any]) -> AccountChange | None:
    """The account change an audit record tells of, or None (anything else, a refusal, or a
    record from another service than the auth service)."""
    data = envelope.data
    if not isinstance(data, AuditRecorded) or envelope.source != ACCOUNT_SOURCE:
        return None
    if data.outcome != "success" or data.action not in ACCOUNT_ACTIONS:
        return None
    return AccountChange(data.subject, data.action, data.occurred_at, data.actor)


async def apply_account_changes(
    conn: asyncpg.Connection,
    changes: Sequence[AccountChange],
    topics: TopicNames,
    max_message_bytes: int,
) -> None:
    """Apply ``changes`` in order, in ``conn``'s transaction."""
    for change in changes:
        if change.action == SUSPENDED:
            await conn.execute(
                "INSERT INTO notification_held_accounts (client_id, held_since) "
                "VALUES ($1, $2) ON CONFLICT DO NOTHING",
                change.client_id,
                change.at,
            )
        elif change.action == ACTIVATED:
            await conn.execute(
                "DELETE FROM notification_held_accounts WHERE client_id = $1", change.client_id
            )
        else:
            await _delete_webhooks(conn, change, topics, max_message_bytes)


async def _delete_webhooks(
    conn: asyncpg.Connection, change: AccountChange, topics: TopicNames, max_message_bytes: int
) -> None:
    await registration_lock(conn, change.client_id)
    await conn.execute(
        "DELETE FROM notification_held_accounts WHERE client_id = $1", change.client_id
    )
    await conn.execute(
        "INSERT INTO notification_deleted_accounts (client_id, deleted_at) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        change.client_id,
        change.at,
    )
    gone = await conn.fetch(
        "UPDATE webhooks SET deleted_at = clock_timestamp() WHERE client_id = $1 "
        "AND deleted_at IS NULL RETURNING webhook_id, url, deleted_at",
        change.client_id,
    )
    for row in gone:
        cancelled = await cancel_pending(conn, row["webhook_id"], row["deleted_at"])
        await write_audit(
            conn,
            topics,
            max_message_bytes,
            "webhook.deleted",
            subject=str(row["webhook_id"]),
            actor=change.actor or ACCOUNT_SOURCE,
            details={
                **audited(row["url"]),
                "pending_cancelled": cancelled,
                "reason": "account_deleted",
            },
            at=row["deleted_at"],
        )
