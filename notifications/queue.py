# SQL here is constant text; values travel as parameters.
"""The durable queue of deliveries in PostgreSQL (an outbox), and the dispatcher's positions.

Why an outbox table and not a topic: a delivery is written in the same transaction as the
dispatcher's position in the fact topics, so a fact is turned into its deliveries exactly once
however often Kafka hands it over; each delivery then needs a per-row state (attempts, next
attempt time, a lease, a log an account can read) that a topic cannot hold without a second
store. The primary key (a delivery id derived from the webhook and the event) makes enqueuing
idempotent as well: a fact announced twice is one delivery per webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from notifications.sealing import Sealed

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to enqueue."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    kind: str
    event_id: str
    event_type: str
    subject: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A live webhook of an account, as the dispatcher matches facts against it."""

    webhook_id: uuid.UUID
    client_id: str
    kinds: frozenset[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for one attempt."""

    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    kind: str
    url: str
    sealed: Sealed
    body: bytes
    attempts: int
    """Attempts made before this one."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    delivery: DueDelivery
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class PositionMismatch(Exception):
    """A batch starts after a stored position: the consumer must seek back to ``seek_to``."""

    def __init__(self, seek_to: Mapping[TopicPartition, int]) -> None:
        self.seek_to = dict(seek_to)
        super().__init__(f"records arrived past the stored positions: seek to {self.seek_to}")


class DeliveryQueue:
    """The deliveries table and the dispatcher's positions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def stored_positions(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The next offset to read per partition (partitions never read are absent)."""
        wanted = list(partitions)
        rows = await self.pool.fetch(
            "SELECT topic, partition, next_offset FROM notification_offsets "
            "WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::integer[]))",
            [t for t, _ in wanted],
            [p for _, p in wanted],
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def subscribers(self, client_ids: Sequence[str]) -> list[Subscriber]:
        """The live webhooks of these accounts."""
        if not client_ids:
            return []
        rows = await self.pool.fetch(
            "SELECT webhook_id, client_id, kinds, created_at FROM webhooks "
            "WHERE client_id = ANY($1::text[]) AND deleted_at IS NULL",
            list(client_ids),
        )
        return [
            Subscriber(r["webhook_id"], r["client_id"], frozenset(r["kinds"]), r["created_at"])
            for r in rows
        ]

    async def enqueue(
        self,
        first_offsets: Mapping[TopicPartition, int],
        next_offsets: Mapping[TopicPartition, int],
        deliveries: Sequence[NewDelivery],
        *,
        tolerate: frozenset[TopicPartition] = frozenset(),
        before: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> set[uuid.UUID]:
        """Enqueue ``deliveries`` and move the positions, in one transaction.

        ``first_offsets``/``next_offsets``: per partition, the first offset of the batch and the
        one after its last. Records read again (a rebalance or a restart handed a partition
        over twice) enqueue nothing new: a delivery's id is derived from its webhook and event,
        and an id already queued is skipped. A batch starting past a stored position is refused
        (:class:`PositionMismatch`: records would be skipped), unless its partition is in
        ``tolerate`` (the broker served the later offset twice: it no longer has the earlier
        ones). Positions only move forward. A delivery to a webhook deleted meanwhile is not
        queued. ``before`` runs in the same transaction once the positions are checked, before
        the deliveries are queued (the batch's account changes). Returns the ids of the
        deliveries that are new.
        """
        tps = sorted(next_offsets)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO notification_offsets (topic, partition, next_offset) "
                "SELECT t, p, o FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS u(t, p, o) "
                "ON CONFLICT DO NOTHING",
                [t for t, _ in tps],
                [p for _, p in tps],
                [first_offsets[tp] for tp in tps],
            )
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM notification_offsets "
                "WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::integer[])) "
                "ORDER BY topic, partition FOR UPDATE",
                [t for t, _ in tps],
                [p for _, p in tps],
            )
            stored = {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
            behind = {
                tp: stored[tp]
                for tp in tps
                if stored[tp] < first_offsets[tp] and tp not in tolerate
            }
            if behind:
                raise PositionMismatch(behind)
            if before is not None:
                await before(conn)
            inserted: set[uuid.UUID] = set()
            if deliveries:
                # Only to webhooks still live, held so until this commits: a deletion between
                # the lookup of subscribers and here would otherwise miss these deliveries when
                # it cancels the webhook's pending ones, and they would go out after it.
                live = await conn.fetch(
                    "SELECT webhook_id FROM webhooks WHERE webhook_id = ANY($1::uuid[]) "
                    "AND deleted_at IS NULL ORDER BY webhook_id FOR SHARE",
                    sorted({d.webhook_id for d in deliveries}),
                )
                alive = {r["webhook_id"] for r in live}
                deliveries = [d for d in deliveries if d.webhook_id in alive]
            if deliveries:
                done = await conn.fetch(
                    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, kind, event_id, "
                    "event_type, subject, body, status, next_attempt_at, created_at) "
                    "SELECT d, w, k, e, t, s, b, 'pending', clock_timestamp(), clock_timestamp() "
                    "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], "
                    "$6::text[], $7::bytea[]) AS u(d, w, k, e, t, s, b) "
                    "ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id",
                    [d.delivery_id for d in deliveries],
                    [d.webhook_id for d in deliveries],
                    [d.kind for d in deliveries],
                    [d.event_id for d in deliveries],
                    [d.event_type for d in deliveries],
                    [d.subject for d in deliveries],
                    [d.body for d in deliveries],
                )
                inserted = {r["delivery_id"] for r in done}
            await conn.execute(
                "UPDATE notification_offsets AS o SET next_offset = greatest(o.next_offset, u.n) "
                "FROM unnest($1::text[], $2::integer[], $3::bigint[]) AS u(t, p, n) "
                "WHERE o.topic = u.t AND o.partition = u.p",
                [t for t, _ in tps],
                [p for _, p in tps],
                [next_offsets[tp] for tp in tps],
            )
        return inserted

    async def claim_due(
        self, limit: int, lease_s: float, *, per_account: int | None = None
    ) -> list[DueDelivery]:
        """Take up to ``limit`` due deliveries for one attempt each, leased for ``lease_s``
        (another dispatcher skips them meanwhile; a crashed one's lease runs out).

        ``per_account``: at most this many of one account's deliveries in flight at once,
        counting those leased already (by any dispatcher), so that one account's slow or
        hanging receivers cannot take every slot and hold up everyone else's deliveries.
        A suspended account's deliveries are not taken (``notifications.accounts``)."""
        rows = await self.pool.fetch(
            "WITH busy AS (SELECT w.client_id, count(*) AS n FROM webhook_deliveries d "
            "JOIN webhooks w ON w.webhook_id = d.webhook_id "
            "WHERE d.status = 'pending' AND d.leased_until >= clock_timestamp() "
            "GROUP BY w.client_id), "
            "ranked AS (SELECT d.delivery_id, d.next_attempt_at, coalesce(b.n, 0) "
            "+ row_number() OVER (PARTITION BY w.client_id "
            "ORDER BY d.next_attempt_at, d.delivery_id) AS slot "
            "FROM webhook_deliveries d JOIN webhooks w ON w.webhook_id = d.webhook_id "
            "LEFT JOIN busy b ON b.client_id = w.client_id "
            "WHERE d.status = 'pending' AND d.next_attempt_at <= clock_timestamp() "
            "AND (d.leased_until IS NULL OR d.leased_until < clock_timestamp()) "
            "AND NOT EXISTS (SELECT 1 FROM notification_held_accounts h "
            "WHERE h.client_id = w.client_id)), "
            "due AS (SELECT d.delivery_id FROM webhook_deliveries d "
            "JOIN ranked r ON r.delivery_id = d.delivery_id "
            "WHERE ($3::bigint IS NULL OR r.slot <= $3) AND d.status = 'pending' "
            "AND (d.leased_until IS NULL OR d.leased_until < clock_timestamp()) "
            "ORDER BY r.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED) "
            "UPDATE webhook_deliveries d SET leased_until = clock_timestamp() "
            "+ make_interval(secs => $2) FROM due, webhooks w "
            "WHERE d.delivery_id = due.delivery_id AND w.webhook_id = d.webhook_id "
            "RETURNING d.delivery_id, d.webhook_id, d.kind, d.body, d.attempts, w.url, "
            "w.secret_key_id, w.secret_sealed",
            limit,
            lease_s,
            per_account,
        )
        return [
            DueDelivery(
                r["delivery_id"],
                r["webhook_id"],
                r["kind"],
                r["url"],
                Sealed(r["secret_key_id"], r["secret_sealed"]),
                r["body"],
                r["attempts"],
            )
            for r in rows
        ]

    async def record(self, outcomes: Sequence[Outcome], delays_s: Sequence[float]) -> list[str]:
        """Log each attempt and move its delivery on: delivered, retried after the next delay,
        or failed after the last. One transaction for them all. An attempt whose delivery moved
        on meanwhile (its lease ran out and another attempt was recorded) is not recorded.
        Returns each outcome's new status (``stale`` for one not recorded)."""
        statuses: list[str] = []
        params: list[tuple[Any, ...]] = []
        for o in outcomes:
            made = o.delivery.attempts + 1
            if o.succeeded:
                status, delay = "delivered", None
            elif made <= len(delays_s):
                status, delay = "pending", delays_s[made - 1]
            else:
                status, delay = "failed", None
            statuses.append(status)
            params.append((o.delivery.delivery_id, o.delivery.attempts, status, delay))
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await conn.fetch(
                "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, status = u.s, "
                "leased_until = NULL, next_attempt_at = CASE WHEN u.s = 'pending' THEN "
                "clock_timestamp() + make_interval(secs => u.delay) END, "
                "finished_at = CASE WHEN u.s = 'pending' THEN NULL ELSE clock_timestamp() END "
                "FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::float8[]) "
                "AS u(id, before, s, delay) "
                "WHERE d.delivery_id = u.id AND d.attempts = u.before AND d.status = 'pending' "
                "RETURNING d.delivery_id",
                [p[0] for p in params],
                [p[1] for p in params],
                [p[2] for p in params],
                [p[3] for p in params],
            )
            kept = {r["delivery_id"] for r in moved}
            logged = [o for o in outcomes if o.delivery.delivery_id in kept]
            if logged:
                await conn.execute(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, "
                    "duration_ms, status_code, error) SELECT * FROM unnest($1::uuid[], "
                    "$2::integer[], $3::timestamptz[], $4::integer[], $5::integer[], $6::text[]) "
                    "ON CONFLICT DO NOTHING",
                    [o.delivery.delivery_id for o in logged],
                    [o.delivery.attempts + 1 for o in logged],
                    [o.attempted_at for o in logged],
                    [o.duration_ms for o in logged],
                    [o.status_code for o in logged],
                    [o.error for o in logged],
                )
        return [
            s if o.delivery.delivery_id in kept else "stale"
            for s, o in zip(statuses, outcomes, strict=True)
        ]

    async def pending_count(self) -> int:
        """Deliveries still waiting for a successful attempt."""
        count: int = await self.pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        )
        return count

    async def audit_batch(self, limit: int) -> list[asyncpg.Record]:
        """The oldest audit events not yet published."""
        return list(
            await self.pool.fetch(
                "SELECT id, key, value, headers FROM notification_audit_outbox "
                "WHERE published_at IS NULL ORDER BY id LIMIT $1",
                limit,
            )
        )

    async def audit_published(self, ids: Sequence[int]) -> None:
        """Mark audit events published (acknowledged by the broker)."""
        await self.pool.execute(
            "UPDATE notification_audit_outbox SET published_at = clock_timestamp() "
            "WHERE id = ANY($1::bigint[])",
            list(ids),
        )
