"""Dead letters for the facade's API and the console: the reads and the redrive of
``artstore dlq`` (:mod:`operations`), with bounded parameters, a bound on how long the broker may
take, and the broker's or the database's absence answered as 503.

Both doors call these functions and nothing else, so the API, the console and the CLI list,
show and redrive the same letters the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from events import Topic, in_utc
from facade.problems import NotFound, Unavailable
from facade.runtime import FacadeRuntime
from operations.dead_letter_queue import (
    DeadLetterFilter,
    parse_letter_id,
    read_dead_letter,
    read_dead_letters,
)
from operations.dead_letter_views import (
    count_rows,
    detail,
    newest_first,
    redrive_report,
    summary,
)
from operations.redrive import redrive_letters

log = logging.getLogger(__name__)
T = TypeVar("T")

SOURCE = "artstore-facade"
MAX_LIMIT = 500
#: Deepest a page may start: a dead-letter topic is meant to be drained, not archived.
MAX_SKIP = 100_000
#: Most letters one redrive may name by id.
MAX_IDS = 500
Text = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
LetterId = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}/[0-9]{1,19}$")]


class DeadLetterFilters(BaseModel):
    """Which dead letters: every filter given must match (none given: all of them)."""

    model_config = ConfigDict(extra="forbid")

    source_topic: Text | None = Field(None, description="With or without the topic prefix.")
    group: Text | None = Field(None, description="The consumer group that gave up.")
    error: Text | None = Field(
        None, description="The reason, the error class, or a part of the error message."
    )
    since: datetime | None = Field(
        None, description="Last failed at or after (ISO 8601; without a zone, UTC)."
    )
    until: datetime | None = Field(None, description="Last failed at or before.")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return in_utc(value.replace(tzinfo=UTC) if value.tzinfo is None else value)

    def selection(self, ids: frozenset[str] = frozenset()) -> DeadLetterFilter:
        """The filter of :mod:`operations` these parameters mean."""
        return DeadLetterFilter(
            self.source_topic, self.group, self.error, self.since, self.until, ids
        )


class DeadLetterQuery(DeadLetterFilters):
    """A page of the dead letters that match, the latest first."""

    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_SKIP, description="How many matching letters to skip.")


class RedriveRequest(DeadLetterFilters):
    """Send the matching dead letters back to their source topics: a dry run unless
    ``execute``; a letter already sent back is never sent again."""

    ids: list[LetterId] = Field(
        default_factory=list,
        max_length=MAX_IDS,
        description="Only these letters (`partition/offset` in the dead-letter topic).",
    )
    execute: bool = Field(False, description="Send them; false: only say what would be sent.")

    @field_validator("ids")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        canonical = []
        for given in ids:
            place = parse_letter_id(given)
            if place is None:
                raise ValueError(f"{given[:40]!r} is not a dead letter's partition/offset")
            canonical.append(f"{place[0]}/{place[1]}")
        return canonical


async def _bounded(runtime: FacadeRuntime, work: Awaitable[T], what: str) -> T:
    """``work`` within the facade's bound on the broker; 503 when it is away or too slow."""
    try:
        return await asyncio.wait_for(work, runtime.facade.dlq_timeout_s)
    except TimeoutError:
        raise Unavailable(
            f"{what}: the broker did not answer within {runtime.facade.dlq_timeout_s:g} s",
            headers={"Retry-After": "30"},
        ) from None
    except (KafkaError, OSError) as exc:
        log.warning("dead letters unavailable", extra={"error": str(exc)})
        raise Unavailable(
            f"{what}: the broker did not answer ({type(exc).__name__})",
            headers={"Retry-After": "30"},
        ) from None


def dead_letter_topic(runtime: FacadeRuntime) -> str:
    return runtime.settings.topic_names().name(Topic.DLQ)


async def list_page(runtime: FacadeRuntime, query: DeadLetterQuery) -> dict[str, Any]:
    """The page ``query`` asks for, with the total and the counts of every matching letter."""
    topic = dead_letter_topic(runtime)
    bootstrap = runtime.settings.kafka_bootstrap
    letters = await _bounded(
        runtime, read_dead_letters(bootstrap, topic, query.selection()), "dead letters"
    )
    ordered = newest_first(letters)
    end = query.offset + query.limit
    return {
        "dead_letter_topic": topic,
        "total": len(letters),
        "counts": count_rows(letters),
        "limit": query.limit,
        "offset": query.offset,
        "next_offset": end if end < len(ordered) else None,
        "items": [
            {**summary(letter), "links": {"self": f"/api/v1/dlq/{letter.id}"}}
            for letter in ordered[query.offset : end]
        ],
    }


async def one(runtime: FacadeRuntime, partition: int, offset: int) -> dict[str, Any]:
    """One dead letter in full, credentials redacted; 404 when the topic has none there."""
    topic = dead_letter_topic(runtime)
    letter = await _bounded(
        runtime,
        read_dead_letter(runtime.settings.kafka_bootstrap, topic, partition, offset),
        "dead letter",
    )
    if letter is None:
        raise NotFound(f"no dead letter {partition}/{offset} in {topic}")
    return detail(letter)


async def redrive(runtime: FacadeRuntime, request: RedriveRequest, *, actor: str) -> dict[str, Any]:
    """What ``artstore dlq redrive`` does for ``request``, with ``actor`` in the audit trail."""
    topic = dead_letter_topic(runtime)
    selection = request.selection(frozenset(request.ids))
    letters = await _bounded(
        runtime,
        read_dead_letters(runtime.settings.kafka_bootstrap, topic, selection),
        "dead letters",
    )
    try:
        results = await redrive_letters(
            runtime.settings, letters, execute=request.execute, actor=actor, source=SOURCE
        )
    except (KafkaError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("redrive failed", extra={"error": str(exc)})
        raise Unavailable(
            f"the redrive could not finish ({type(exc).__name__}); what was sent is in the "
            "ledger and will not be sent again: retry",
            headers={"Retry-After": "30"},
        ) from None
    return redrive_report(results, executed=request.execute)
