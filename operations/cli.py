"""``artstore dlq list|show|redrive`` and ``artstore lag``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from artstore.settings import Settings, load_settings
from consumers.sql import asyncpg_dsn
from events import Topic
from operations.dead_letter_queue import DeadLetter, DeadLetterFilter, counts, read_dead_letters
from operations.lag import PartitionLag, read_lag
from operations.redrive import RedriveLedger, RedriveOutcome, RedriveResult, redrive

console = Console()
dlq_app = typer.Typer(help="The dead-letter topic: list, show and redrive what failed.")

SourceOption = Annotated[
    str | None, typer.Option("--source-topic", help="Source topic (with or without prefix).")
]
GroupOption = Annotated[str | None, typer.Option("--group", help="Consumer group.")]
ErrorOption = Annotated[
    str | None, typer.Option("--error", help="Reason, error class, or part of the message.")
]
SinceOption = Annotated[datetime | None, typer.Option(help="Failed at or after (UTC).")]
UntilOption = Annotated[datetime | None, typer.Option(help="Failed at or before (UTC).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _letters(settings: Settings, selection: DeadLetterFilter) -> list[DeadLetter]:
    dlq = settings.topic_names().name(Topic.DLQ)
    return asyncio.run(read_dead_letters(settings.kafka_bootstrap, dlq, selection))


def _summary(letter: DeadLetter) -> dict[str, object]:
    dead = letter.dead
    return {
        "id": letter.id,
        "source": dead.coordinates,
        "group": dead.consumer_group,
        "reason": dead.reason,
        "error_class": dead.error_class,
        "error": dead.error,
        "attempts": dead.attempts,
        "last_failed_at": (dead.last_failed_at or letter.written_at).isoformat(),
        "correlation_id": dead.correlation_id,
    }


@dlq_app.command("list")
def list_command(
    source_topic: SourceOption = None,
    group: GroupOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dead letters matching the filters, and their counts by source, group and reason."""
    selection = DeadLetterFilter(source_topic, group, error, _utc(since), _utc(until))
    letters = _letters(load_settings(), selection)
    tally = counts(letters)
    if as_json:
        print(
            json.dumps(
                {
                    "dead_letters": [_summary(d) for d in letters],
                    "counts": [
                        {"source_topic": s, "group": g, "reason": r, "count": n}
                        for (s, g, r), n in sorted(tally.items())
                    ],
                    "total": len(letters),
                }
            )
        )
        return
    table = Table("id", "source", "group", "reason", "error", "attempts", "last failed")
    for letter in letters:
        row = _summary(letter)
        table.add_row(
            *(str(row[k])[:80] for k in ("id", "source", "group", "reason", "error")),
            str(row["attempts"]),
            str(row["last_failed_at"]),
        )
    console.print(table)
    totals = Table("source topic", "group", "reason", "count")
    for (source, grp, reason), n in sorted(tally.items()):
        totals.add_row(source, grp, reason, str(n))
    console.print(totals)
    console.print(f"{len(letters)} dead letter(s)")


@dlq_app.command("show")
def show_command(
    letter_id: Annotated[str, typer.Argument(help="PARTITION/OFFSET in the dead-letter topic.")],
) -> None:
    """Every header of one dead letter and its payload, decoded."""
    settings = load_settings()
    letters = [d for d in _letters(settings, DeadLetterFilter()) if d.id == letter_id]
    if not letters:
        dlq = settings.topic_names().name(Topic.DLQ)
        console.print(f"[red]no dead letter {letter_id} in {dlq} (list them: artstore dlq list)")
        raise typer.Exit(1)
    letter = letters[0]
    print(
        json.dumps(
            {
                "id": letter.id,
                "topic": letter.topic,
                "written_at": letter.written_at.isoformat(),
                "key": letter.key.decode("utf-8", "replace"),
                "headers": letter.headers,
                "payload": letter.payload(),
            },
            indent=2,
            ensure_ascii=False,
        )
    )


@dlq_app.command("redrive")
def redrive_command(
    source_topic: SourceOption = None,
    group: GroupOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Send them; without it, only say what would be sent.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who redrives, for the audit trail.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send matching dead letters back to their source topics, each at most once."""
    settings = load_settings()
    selection = DeadLetterFilter(source_topic, group, error, _utc(since), _utc(until))
    results = asyncio.run(_redrive(settings, selection, execute=execute, actor=actor))
    tally: dict[str, int] = {o.value: 0 for o in RedriveOutcome}
    for result in results:
        tally[result.outcome.value] += 1
    if as_json:
        rows = [
            {"id": r.letter.id, "source": r.letter.dead.coordinates, "outcome": r.outcome.value}
            | ({"detail": r.detail} if r.detail else {})
            for r in results
        ]
        print(json.dumps({"executed": execute, "results": rows, "counts": tally}))
        return
    for result in results:
        detail = f": {result.detail}" if result.detail else ""
        console.print(
            f"{result.letter.id} {result.letter.dead.coordinates} {result.outcome.value}{detail}",
            markup=False,
        )
    console.print(", ".join(f"{n} {k}" for k, n in tally.items() if n))
    if not execute:
        console.print("dry run: nothing sent (add --execute to send)")


async def _redrive(
    settings: Settings, selection: DeadLetterFilter, *, execute: bool, actor: str | None
) -> list[RedriveResult]:
    dlq = settings.topic_names().name(Topic.DLQ)
    letters = await read_dead_letters(settings.kafka_bootstrap, dlq, selection)
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
        )
    finally:
        if producer is not None:
            await producer.stop()
        await ledger.close()


def lag_command(as_json: JsonOption = False) -> None:
    """Lag of every consumer group of this deployment, per partition, in records and seconds."""
    settings = load_settings()
    names = settings.topic_names()
    lags = asyncio.run(
        read_lag(
            settings.kafka_bootstrap,
            list(names.all().values()),
            group_prefixes=[f"{names.prefix}.", "artstore-"],
        )
    )
    if as_json:
        print(json.dumps([_lag_row(lag) for lag in lags]))
        return
    table = Table("group", "topic", "partition", "committed", "end", "lag", "lag (s)")
    for lag in lags:
        table.add_row(
            lag.group,
            lag.topic,
            str(lag.partition),
            str(lag.committed),
            str(lag.end),
            str(lag.records),
            f"{lag.seconds:.1f}",
        )
    console.print(table)


def _lag_row(lag: PartitionLag) -> dict[str, object]:
    return {
        "group": lag.group,
        "topic": lag.topic,
        "partition": lag.partition,
        "committed": lag.committed,
        "end": lag.end,
        "records": lag.records,
        "seconds": round(lag.seconds, 3),
    }
