# SQL here is constant text; values travel as parameters.
"""An account's webhooks: register, list, delete, and read their delivery log.

Every function takes the caller's client id and touches only that account's rows: another
account's webhook id is answered exactly like an id that does not exist (None), so nothing
tells a caller which ids exist. A registration or deletion and its audit event are written in
one transaction (the audit outbox the dispatcher relays to ``artstore.audit``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events import TopicNames, audit_event, encode
from events.envelope import Envelope
from events.models.audit import AuditRecorded
from notifications.routing import NotificationKind
from notifications.sealing import SecretBox, new_secret
from notifications.targets import Target, audited

AUDIT_SOURCE = "artstore-notifications"


class TooManyWebhooks(Exception):
    """The account has as many webhooks as it may."""


class AccountDeleted(Exception):
    """The account was deleted: it registers no webhook."""


async def registration_lock(conn: asyncpg.Connection, client_id: str) -> None:
    """Hold the account's webhooks still until ``conn``'s transaction ends: one registration or
    deletion of an account's webhooks at a time."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"wh:{client_id}")


async def check_not_deleted(conn: asyncpg.Connection, client_id: str) -> None:
    """:class:`AccountDeleted` if the auth service deleted ``client_id`` (call it holding
    :func:`registration_lock`)."""
    deleted = await conn.fetchval(
        "SELECT 1 FROM notification_deleted_accounts WHERE client_id = $1", client_id
    )
    if deleted:
        raise AccountDeleted(f"account {client_id} is deleted; it registers no webhooks")


@dataclass(frozen=True)
class Registered:
    """A new webhook and its secret (shown this once, never again)."""

    webhook: dict[str, Any]
    secret: str


def _webhook(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "webhook_id": str(row["webhook_id"]),
        "url": row["url"],
        "kinds": list(row["kinds"]),
        "description": row["description"],
        "created_at": row["created_at"].isoformat(),
    }


class Registrations:
    """The webhooks table, as the facade uses it."""

    def __init__(
        self, pool: asyncpg.Pool, box: SecretBox, topics: TopicNames, *, max_message_bytes: int
    ) -> None:
        self.pool = pool
        self.box = box
        self.topics = topics
        self.max_message_bytes = max_message_bytes

    async def register(
        self,
        client_id: str,
        target: Target,
        kinds: Sequence[NotificationKind],
        description: str,
        *,
        limit: int,
        correlation_id: str | None = None,
    ) -> Registered:
        """A new webhook for ``client_id``; :class:`TooManyWebhooks` past ``limit``,
        :class:`AccountDeleted` once the auth service deleted the account (its tokens stay
        good until they expire)."""
        webhook_id = uuid.uuid4()
        secret = new_secret()
        sealed = self.box.seal(webhook_id, secret)
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            # One registration of an account at a time, so the limit holds under races, and
            # none racing the account's deletion (notifications.accounts).
            await registration_lock(conn, client_id)
            await check_not_deleted(conn, client_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM webhooks WHERE client_id = $1 AND deleted_at IS NULL",
                client_id,
            )
            if count >= limit:
                raise TooManyWebhooks(
                    f"an account may have at most {limit} webhooks; delete one first"
                )
            row = await conn.fetchrow(
                "INSERT INTO webhooks (webhook_id, client_id, url, kinds, description, "
                "secret_key_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                "RETURNING *",
                webhook_id,
                client_id,
                target.url,
                [k.value for k in kinds],
                description,
                sealed.key_id,
                sealed.blob,
                now,
            )
            webhook = _webhook(row)
            details = {**audited(target.url), "kinds": webhook["kinds"]}
            await self._audit(
                conn, "webhook.registered", webhook_id, client_id, details, now, correlation_id
            )
        return Registered(webhook, secret)

    async def of_account(self, client_id: str) -> list[dict[str, Any]]:
        """The account's live webhooks, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM webhooks WHERE client_id = $1 AND deleted_at IS NULL "
            "ORDER BY created_at, webhook_id",
            client_id,
        )
        return [_webhook(r) for r in rows]

    async def get(self, client_id: str, webhook_id: uuid.UUID) -> dict[str, Any] | None:
        """One of the account's live webhooks, or None (also for another account's)."""
        row = await self.pool.fetchrow(
            "SELECT * FROM webhooks WHERE webhook_id = $1 AND client_id = $2 "
            "AND deleted_at IS NULL",
            webhook_id,
            client_id,
        )
        return None if row is None else _webhook(row)

    async def delete(
        self, client_id: str, webhook_id: uuid.UUID, *, correlation_id: str | None = None
    ) -> bool:
        """Delete one of the account's webhooks and cancel its pending deliveries; False if the
        account has no such webhook. Its delivery log is kept (rows stay, marked deleted)."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE webhooks SET deleted_at = $3 WHERE webhook_id = $1 AND client_id = $2 "
                "AND deleted_at IS NULL RETURNING url",
                webhook_id,
                client_id,
                now,
            )
            if row is None:
                return False
            cancelled = await cancel_pending(conn, webhook_id, now)
            details = {**audited(row["url"]), "pending_cancelled": cancelled}
            await self._audit(
                conn, "webhook.deleted", webhook_id, client_id, details, now, correlation_id
            )
        return True

    async def deliveries(
        self,
        client_id: str,
        webhook_id: uuid.UUID,
        *,
        status: str | None,
        limit: int,
        before: datetime | None,
    ) -> list[dict[str, Any]] | None:
        """The webhook's deliveries, the latest first, each with every attempt; None if the
        account has no such live webhook."""
        if await self.get(client_id, webhook_id) is None:
            return None
        rows = await self.pool.fetch(
            "SELECT d.delivery_id, d.kind, d.event_id, d.event_type, d.subject, d.status, "
            "d.attempts, d.next_attempt_at, d.created_at, d.finished_at, "
            "coalesce(jsonb_agg(jsonb_build_object('attempt', a.attempt, 'attempted_at', "
            "a.attempted_at, 'duration_ms', a.duration_ms, 'status_code', a.status_code, "
            "'error', a.error) ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), "
            "'[]'::jsonb) AS log "
            "FROM webhook_deliveries d LEFT JOIN webhook_attempts a USING (delivery_id) "
            "WHERE d.webhook_id = $1 AND ($2::text IS NULL OR d.status = $2) "
            "AND ($3::timestamptz IS NULL OR d.created_at < $3) "
            "GROUP BY d.delivery_id ORDER BY d.created_at DESC, d.delivery_id LIMIT $4",
            webhook_id,
            status,
            before,
            limit,
        )
        return [
            {
                "delivery_id": str(r["delivery_id"]),
                "kind": r["kind"],
                "event_id": r["event_id"],
                "event_type": r["event_type"],
                "subject": r["subject"],
                "status": r["status"],
                "attempts": r["attempts"],
                "next_attempt_at": _iso(r["next_attempt_at"]),
                "created_at": r["created_at"].isoformat(),
                "finished_at": _iso(r["finished_at"]),
                "log": _log(r["log"]),
            }
            for r in rows
        ]

    async def _audit(
        self,
        conn: asyncpg.Connection,
        action: str,
        webhook_id: uuid.UUID,
        actor: str,
        details: dict[str, Any],
        at: datetime,
        correlation_id: str | None,
    ) -> None:
        await write_audit(
            conn,
            self.topics,
            self.max_message_bytes,
            action,
            subject=str(webhook_id),
            actor=actor,
            details=details,
            at=at,
            correlation_id=correlation_id,
        )


async def cancel_pending(conn: asyncpg.Connection, webhook_id: uuid.UUID, at: datetime) -> int:
    """Cancel a deleted webhook's pending deliveries (in ``conn``'s transaction); how many."""
    cancelled: int = await conn.fetchval(
        "WITH c AS (UPDATE webhook_deliveries SET status = 'cancelled', finished_at = $2, "
        "next_attempt_at = NULL WHERE webhook_id = $1 AND status = 'pending' RETURNING 1) "
        "SELECT count(*) FROM c",
        webhook_id,
        at,
    )
    return cancelled


async def write_audit(
    conn: asyncpg.Connection,
    topics: TopicNames,
    max_message_bytes: int,
    action: str,
    *,
    subject: str,
    actor: str,
    details: dict[str, Any],
    at: datetime,
    correlation_id: str | None = None,
) -> None:
    """Put an audit event in the outbox, in ``conn``'s transaction: it is published (by the
    dispatcher's relay) exactly when the change it records is committed."""
    event: Envelope[AuditRecorded] = audit_event(
        action,
        subject=subject,
        source=AUDIT_SOURCE,
        actor=actor,
        details=details,
        correlation_id=correlation_id,
        time=at,
    )
    record = encode(event, topics, max_bytes=max_message_bytes)
    await conn.execute(
        "INSERT INTO notification_audit_outbox (key, value, headers, created_at) "
        "VALUES ($1, $2, $3, $4)",
        record.key,
        record.value,
        dict(record.headers),
        at,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _log(value: Any) -> list[dict[str, Any]]:
    entries = json.loads(value) if isinstance(value, str | bytes) else value
    return list(entries or [])
