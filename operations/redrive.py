"""Sending dead letters back to their source topic, each at most once.

The ledger is a PostgreSQL table keyed by the record's *source* coordinates (topic, partition,
offset): a second redrive of the same dead letter finds its row and sends nothing, however many
times the command runs and across restarts. A record that fails again after a redrive is
dead-lettered with new source coordinates (its redriven copy's), so it can be redriven again.

Order per record, in one transaction: claim the row -> send and wait for the broker's
acknowledgement -> note the new offset -> announce it on the audit topic -> commit. A crash after
the send and before the commit leaves no row, and the next redrive sends the record (and its
audit event) again: at least once, never silently dropped, never sent unannounced; the
consumers' handlers are idempotent (same file id and checksum: already done).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from base.operations_audit import SOURCE, operator
from base.settings import Settings
from consumers.sql import asyncpg_dsn
from events import TopicNames, audit_event, encode
from events.dead_letters import HEADERS, REDRIVEN_FROM
from operations.dead_letter_queue import DeadLetter

log = logging.getLogger(__name__)


class RedriveOutcome(StrEnum):
    """What a redrive did, or would do, with one dead letter."""

    WOULD_SEND = "would_send"
    SENT = "sent"
    ALREADY_REDRIVEN = "already_redriven"
    NOT_REDRIVABLE = "not_redrivable"


@dataclass(frozen=True)
class RedriveResult:
    """One dead letter's outcome, with the reason when it is not sent."""

    letter: DeadLetter
    outcome: RedriveOutcome
    detail: str = ""


class RedriveLedger:
    """Which dead letters were sent back, keyed by their source coordinates (see the module)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str) -> RedriveLedger:
        """A ledger on ``dsn`` (a plain ``postgresql://`` DSN); its table is created if absent."""
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS dlq_redrives ("
            " source_topic text NOT NULL, source_partition integer NOT NULL,"
            " source_offset bigint NOT NULL, dlq_topic text NOT NULL,"
            " dlq_partition integer NOT NULL, dlq_offset bigint NOT NULL,"
            " sent_partition integer, sent_offset bigint, actor text,"
            " redriven_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (source_topic, source_partition, source_offset))"
        )
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def already_redriven(self, letters: Sequence[DeadLetter]) -> set[str]:
        """The source coordinates (``topic/partition/offset``) among ``letters`` already sent."""
        rows = await self._pool.fetch(
            "SELECT source_topic, source_partition, source_offset FROM dlq_redrives "
            "WHERE (source_topic, source_partition, source_offset) IN "
            "(SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]))",
            [d.dead.source_topic for d in letters],
            [d.dead.source_partition for d in letters],
            [d.dead.source_offset for d in letters],
        )
        return {f"{r[0]}/{r[1]}/{r[2]}" for r in rows}

    async def send_once(
        self,
        letter: DeadLetter,
        producer: AIOKafkaProducer,
        *,
        actor: str | None,
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Send ``letter`` back unless the ledger has it; True when this call sent it.

        ``announce`` runs once the record is acknowledged and before the row is committed, so
        a record sent is announced at least once: a crash in between sends both again."""
        dead = letter.dead
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO dlq_redrives (source_topic, source_partition, source_offset,"
                " dlq_topic, dlq_partition, dlq_offset, actor) VALUES ($1,$2,$3,$4,$5,$6,$7)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                dead.source_topic,
                dead.source_partition,
                dead.source_offset,
                letter.topic,
                letter.partition,
                letter.offset,
                actor,
            )
            if claimed is None:
                return False
            sent = await producer.send_and_wait(
                dead.source_topic,
                value=letter.value,
                key=letter.key or None,
                headers=_original_headers(letter),
            )
            await conn.execute(
                "UPDATE dlq_redrives SET sent_partition = $4, sent_offset = $5 "
                "WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3",
                dead.source_topic,
                dead.source_partition,
                dead.source_offset,
                sent.partition,
                sent.offset,
            )
            if announce is not None:
                await announce()
        return True


def _original_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The record's own headers (the dead letter's removed) and where it was redriven from."""
    kept = [(k, v.encode()) for k, v in letter.headers.items() if k not in HEADERS]
    kept = [(k, v) for k, v in kept if k != REDRIVEN_FROM]
    return [*kept, (REDRIVEN_FROM, f"{letter.topic}/{letter.partition}/{letter.offset}".encode())]


def refusal(letter: DeadLetter, names: TopicNames) -> str | None:
    """Why ``letter`` can't be sent back, or None when it can."""
    dead = letter.dead
    if dead.reference:
        return (
            "the dead letter is a reference to a record too large to keep; "
            f"read it at {dead.coordinates} while the topic retains it"
        )
    if names.logical(dead.source_topic) is None:
        return f"its source topic {dead.source_topic!r} is not one of this deployment's"
    if dead.source_partition < 0 or dead.source_offset < 0:
        return "its headers do not name a source partition and offset"
    return None


async def redrive(
    letters: Sequence[DeadLetter],
    *,
    names: TopicNames,
    ledger: RedriveLedger,
    producer: AIOKafkaProducer | None,
    max_message_bytes: int,
    actor: str | None = None,
    source: str = SOURCE,
) -> list[RedriveResult]:
    """Send ``letters`` back to their source topics, each at most once, and announce every
    record sent on the audit topic (from ``source``, the service or command that redrives).
    Without a ``producer`` nothing is sent (a dry run)."""
    done = await ledger.already_redriven(letters)
    results: list[RedriveResult] = []
    for letter in letters:
        why = refusal(letter, names)
        if why is not None:
            results.append(RedriveResult(letter, RedriveOutcome.NOT_REDRIVABLE, why))
        elif letter.dead.coordinates in done:
            results.append(RedriveResult(letter, RedriveOutcome.ALREADY_REDRIVEN))
        elif producer is None:
            results.append(RedriveResult(letter, RedriveOutcome.WOULD_SEND))
        elif await ledger.send_once(
            letter,
            producer,
            actor=actor,
            announce=functools.partial(
                _audit, producer, letter, names, max_message_bytes, actor, source
            ),
        ):
            results.append(RedriveResult(letter, RedriveOutcome.SENT))
        else:
            results.append(RedriveResult(letter, RedriveOutcome.ALREADY_REDRIVEN))
    return results


async def redrive_letters(
    settings: Settings,
    letters: Sequence[DeadLetter],
    *,
    execute: bool,
    actor: str | None = None,
    source: str = SOURCE,
) -> list[RedriveResult]:
    """:func:`redrive` on the deployment ``settings`` name: its ledger in the deployment's
    database, and (with ``execute``) a producer that waits for every replica. What both
    ``artstore dlq redrive`` and the facade run."""
    ledger = await RedriveLedger.connect(asyncpg_dsn(settings.database_url))
    producer = None
    try:
        if execute:
            producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id="artstore-dlq-redrive",
                acks="all",
                max_request_size=settings.max_message_bytes + 64 * 1024,
            )
            await producer.start()
        return await redrive(
            letters,
            names=settings.topic_names(),
            ledger=ledger,
            producer=producer,
            max_message_bytes=settings.max_message_bytes,
            actor=actor,
            source=source,
        )
    finally:
        if producer is not None:
            await producer.stop()
        await ledger.close()


async def _audit(
    producer: AIOKafkaProducer,
    letter: DeadLetter,
    names: TopicNames,
    max_message_bytes: int,
    actor: str | None,
    source: str,
) -> None:
    dead = letter.dead
    details: dict[str, Any] = {
        "target_topic": dead.source_topic,
        "dead_letter": f"{letter.topic}/{letter.partition}/{letter.offset}",
        "consumer_group": dead.consumer_group,
        "reason": dead.reason,
        "error": dead.error[:200],
    }
    event = audit_event(
        "dlq.redriven",
        subject=dead.coordinates,
        source=source,
        actor=actor or operator(),
        details=details,
        correlation_id=dead.correlation_id or None,
    )
    record = encode(event, names, max_bytes=max_message_bytes)
    await producer.send_and_wait(
        record.topic,
        value=record.value,
        key=record.key,
        headers=[(k, v.encode()) for k, v in record.headers.items()],
    )
    log.info(
        "dead letter redriven",
        extra={"source": dead.coordinates, "correlation_id": dead.correlation_id},
    )
