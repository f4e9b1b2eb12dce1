"""``artstore dlq list|show|redrive`` and ``artstore lag``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from base.settings import Settings, load_settings
from events import Topic
from operations.dead_letter_queue import (
    DeadLetter,
    DeadLetterFilter,
    parse_letter_id,
    read_dead_letter,
    read_dead_letters,
)
from operations.dead_letter_views import count_rows, detail, redrive_report, summary
from operations.lag import PartitionLag, read_lag
from operations.redrive import RedriveResult, redrive_letters

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
    tally = count_rows(letters)
    if as_json:
        print(
            json.dumps(
                {
                    "dead_letters": [summary(d) for d in letters],
                    "counts": tally,
                    "total": len(letters),
                }
            )
        )
        return
    table = Table("id", "source", "group", "reason", "error", "attempts", "last failed")
    for letter in letters:
        row = summary(letter)
        table.add_row(
            *(str(row[k])[:80] for k in ("id", "source", "group", "reason", "error")),
            str(row["attempts"]),
            str(row["last_failed_at"]),
        )
    console.print(table)
    totals = Table("source topic", "group", "reason", "count")
    for row in tally:
        totals.add_row(*(str(row[k]) for k in ("source_topic", "group", "reason", "count")))
    console.print(totals)
    console.print(f"{len(letters)} dead letter(s)")


@dlq_app.command("show")
def show_command(
    letter_id: Annotated[str, typer.Argument(help="PARTITION/OFFSET in the dead-letter topic.")],
) -> None:
    """Every header of one dead letter and its payload, decoded (credentials redacted)."""
    settings = load_settings()
    dlq = settings.topic_names().name(Topic.DLQ)
    place = parse_letter_id(letter_id)
    letter = None
    if place is not None:
        letter = asyncio.run(read_dead_letter(settings.kafka_bootstrap, dlq, *place))
    if letter is None:
        console.print(f"[red]no dead letter {letter_id} in {dlq} (list them: artstore dlq list)")
        raise typer.Exit(1)
    print(json.dumps(detail(letter), indent=2, ensure_ascii=False))


@dlq_app.command("redrive")
def redrive_command(
    source_topic: SourceOption = None,
    group: GroupOption = None,
    error: ErrorOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    letter_ids: Annotated[
        list[str] | None, typer.Option("--id", help="Only this letter (PARTITION/OFFSET); repeat.")
    ] = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Send them; without it, only say what would be sent.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who redrives, for the audit trail.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Send matching dead letters back to their source topics, each at most once."""
    settings = load_settings()
    selection = DeadLetterFilter(
        source_topic, group, error, _utc(since), _utc(until), frozenset(letter_ids or ())
    )
    results = asyncio.run(_redrive(settings, selection, execute=execute, actor=actor))
    report = redrive_report(results, executed=execute)
    tally: dict[str, int] = report["counts"]
    if as_json:
        print(json.dumps(report))
        return
    for result in results:
        note = f": {result.detail}" if result.detail else ""
        console.print(
            f"{result.letter.id} {result.letter.dead.coordinates} {result.outcome.value}{note}",
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
    return await redrive_letters(settings, letters, execute=execute, actor=actor)


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
