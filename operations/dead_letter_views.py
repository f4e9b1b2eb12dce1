"""Dead letters as operators see them, whatever shows them (``artstore dlq``, the facade's API,
the console): a summary, the counts, one letter in full, a redrive's outcomes.

Secrets never leave here: a dead letter keeps its record's headers, and a command's headers carry
its producer's bearer token. Headers named like a credential keep only their scheme, and any
bearer or basic credential or JWT in a header, the error message or the payload is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from operations.dead_letter_queue import DeadLetter, counts
from operations.redrive import RedriveOutcome, RedriveResult

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"authorization|cookie|token|secret|password|passwd|api[-_]?key|credential", re.IGNORECASE
)
_CREDENTIAL = re.compile(r"\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def redact_text(text: str) -> str:
    """``text`` with bearer and basic credentials and JWTs replaced."""
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def redacted_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers fit to show: a credential's name keeps its value's scheme only (``Bearer``)."""
    shown: dict[str, str] = {}
    for name, value in headers.items():
        if _SECRET_NAME.search(name):
            scheme, _, rest = value.strip().partition(" ")
            shown[name] = f"{scheme} {REDACTED}" if rest and scheme.isalpha() else REDACTED
        else:
            shown[name] = redact_text(value)
    return shown


def _redacted_payload(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted_payload(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted_payload(v) for k, v in value.items()}
    return value


def summary(letter: DeadLetter) -> dict[str, Any]:
    """One line of a list: where the record came from, why it is here, and when."""
    dead = letter.dead
    first = dead.first_failed_at
    return {
        "id": letter.id,
        "source": dead.coordinates,
        "source_topic": dead.source_topic,
        "group": dead.consumer_group,
        "reason": dead.reason,
        "error_class": dead.error_class,
        "error": redact_text(dead.error),
        "attempts": dead.attempts,
        "first_failed_at": first.isoformat() if first else None,
        "last_failed_at": (dead.last_failed_at or letter.written_at).isoformat(),
        "written_at": letter.written_at.isoformat(),
        "correlation_id": dead.correlation_id,
        "service": dead.service,
        "element_id": dead.element_id,
        "reference": dead.reference,
    }


def count_rows(letters: Iterable[DeadLetter]) -> list[dict[str, Any]]:
    """How many letters per source topic, consumer group and reason, in that order."""
    return [
        {"source_topic": source, "group": group, "reason": reason, "count": n}
        for (source, group, reason), n in sorted(counts(letters).items())
    ]


def detail(letter: DeadLetter) -> dict[str, Any]:
    """One letter in full: its place in the dead-letter topic, every header, the payload."""
    return {
        "id": letter.id,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "written_at": letter.written_at.isoformat(),
        "key": letter.key.decode("utf-8", "replace"),
        "headers": redacted_headers(letter.headers),
        "dead_letter": summary(letter),
        "payload": _redacted_payload(letter.payload()),
    }


def newest_first(letters: Sequence[DeadLetter]) -> list[DeadLetter]:
    """``letters`` by the time they were dead-lettered, the latest first."""
    return sorted(letters, key=lambda d: (d.written_at, d.partition, d.offset), reverse=True)


def redrive_report(results: Sequence[RedriveResult], *, executed: bool) -> dict[str, Any]:
    """What a redrive did (or, in a dry run, would do) with each letter, and how many of each."""
    tally: dict[str, int] = {o.value: 0 for o in RedriveOutcome}
    for result in results:
        tally[result.outcome.value] += 1
    rows = [
        {"id": r.letter.id, "source": r.letter.dead.coordinates, "outcome": r.outcome.value}
        | ({"detail": r.detail} if r.detail else {})
        for r in results
    ]
    return {"executed": executed, "results": rows, "counts": tally}
