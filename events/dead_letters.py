"""Dead letters: one record shape for every consumer that gives up on a record.

A dead letter keeps the original key and value bytes and adds headers saying where the record
came from (source topic, partition, offset, the consumer group that read it), why it is here
(reason, error class and message, attempts, first and last failure time) and the correlation id
it carried. :func:`dead_letter` is the only place that writes them; :func:`read_headers` the
only place that reads them back.

A record too large to be dead-lettered whole (a dead letter must itself fit under the broker's
message limit) is dead-lettered as a *reference*: a small JSON value naming its coordinates
(source topic, partition, offset), its size and sha256, so an operator can still find it in the
source topic while it is retained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from events.codec import OutgoingRecord

SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
CONSUMER_GROUP = "dlq_consumer_group"
REASON = "dlq_reason"
ERROR_CLASS = "dlq_error_class"
ERROR = "dlq_error"
ATTEMPTS = "dlq_attempts"
FIRST_FAILED_AT = "dlq_first_failed_at"
LAST_FAILED_AT = "dlq_last_failed_at"
CORRELATION_ID = "dlq_correlation_id"
SERVICE = "dlq_service"
ELEMENT_ID = "dlq_element_id"
REFERENCE = "dlq_reference"
"""``"true"`` when the value is a reference to the record instead of its bytes."""
REDRIVEN_FROM = "dlq_redriven_from"
"""Set on a record sent back to its source topic: ``<dlq topic>/<partition>/<offset>``."""

HEADERS = frozenset(
    {SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, CONSUMER_GROUP, REASON, ERROR_CLASS, ERROR}
    | {ATTEMPTS, FIRST_FAILED_AT, LAST_FAILED_AT, CORRELATION_ID, SERVICE, ELEMENT_ID, REFERENCE}
)
"""Every header a dead letter adds (an original header of the same name is replaced)."""

MAX_ERROR_CHARS = 1000
#: Room kept under the message limit for the headers a dead letter adds.
_HEADROOM = 8 * 1024
#: A longer original key is not kept in a reference (the coordinates name the record).
_MAX_REFERENCE_KEY = 256
REFERENCE_TYPE = "artstore.dlq.reference.v1"
#: The header every event carries its correlation id in (see :mod:`events.codec`).
_CORRELATION_HEADER = "correlation_id"


@dataclass(frozen=True)
class Failure:
    """Why a consumer gives up on a record: a machine-readable reason, the error's class and
    message for a person, how often it was tried and when it first and last failed."""

    reason: str
    error: str
    error_class: str = ""
    attempts: int = 1
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None

    @classmethod
    def of(
        cls,
        reason: str,
        exc: BaseException | str,
        *,
        attempts: int = 1,
        first_failed_at: datetime | None = None,
    ) -> Failure:
        """The failure ``exc`` (an exception, or a sentence when nothing was raised)."""
        now = datetime.now(UTC)
        if isinstance(exc, BaseException):
            error, error_class = str(exc) or repr(exc), type(exc).__name__
        else:
            error, error_class = exc, ""
        return cls(reason, error, error_class, attempts, first_failed_at or now, now)


@dataclass(frozen=True)
class DeadLetterHeaders:
    """The headers of a dead letter, read back (missing ones are empty)."""

    source_topic: str
    source_partition: int
    source_offset: int
    consumer_group: str
    reason: str
    error_class: str
    error: str
    attempts: int
    first_failed_at: datetime | None
    last_failed_at: datetime | None
    correlation_id: str
    service: str
    element_id: str
    reference: bool

    @property
    def coordinates(self) -> str:
        """``topic/partition/offset`` of the record in its source topic."""
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}"


def read_headers(headers: Mapping[str, str]) -> DeadLetterHeaders:
    """A dead letter's headers (as decoded strings) read back; a header we did not write (a
    record put on the DLQ by hand) reads as empty, a number as -1."""
    return DeadLetterHeaders(
        source_topic=headers.get(SOURCE_TOPIC, ""),
        source_partition=_int(headers.get(SOURCE_PARTITION)),
        source_offset=_int(headers.get(SOURCE_OFFSET)),
        consumer_group=headers.get(CONSUMER_GROUP, ""),
        reason=headers.get(REASON, ""),
        error_class=headers.get(ERROR_CLASS, ""),
        error=headers.get(ERROR, ""),
        attempts=max(_int(headers.get(ATTEMPTS)), 0),
        first_failed_at=_time(headers.get(FIRST_FAILED_AT)),
        last_failed_at=_time(headers.get(LAST_FAILED_AT)),
        correlation_id=headers.get(CORRELATION_ID, ""),
        service=headers.get(SERVICE, ""),
        element_id=headers.get(ELEMENT_ID, ""),
        reference=headers.get(REFERENCE) == "true",
    )


def decoded_headers(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    """A record's headers as strings (bytes that are not UTF-8 get replacement characters)."""
    return {name: (raw or b"").decode("utf-8", "replace") for name, raw in record.headers or ()}


def dead_letter(
    record: ConsumerRecord[Any, Any],
    *,
    topic: str,
    group: str,
    failure: Failure,
    service: str,
    max_bytes: int,
    extra: Mapping[str, str] | None = None,
) -> OutgoingRecord:
    """``record``, read by consumer ``group``, as a dead letter for ``topic`` (the physical DLQ
    topic name).

    Original headers are kept, their values decoded as UTF-8 with replacement characters where
    they are not UTF-8; key and value bytes are kept exactly — unless the whole would not fit
    under ``max_bytes``, then the value is a reference to the record (see the module).
    """
    original = {
        name: value for name, value in decoded_headers(record).items() if name not in HEADERS
    }
    now = datetime.now(UTC)
    added = {
        SOURCE_TOPIC: record.topic,
        SOURCE_PARTITION: str(record.partition),
        SOURCE_OFFSET: str(record.offset),
        CONSUMER_GROUP: group,
        REASON: failure.reason,
        ERROR_CLASS: failure.error_class,
        ERROR: _printable(failure.error)[:MAX_ERROR_CHARS],
        ATTEMPTS: str(failure.attempts),
        FIRST_FAILED_AT: (failure.first_failed_at or now).isoformat(),
        LAST_FAILED_AT: (failure.last_failed_at or now).isoformat(),
        CORRELATION_ID: original.get(_CORRELATION_HEADER, "")[:200],
        SERVICE: service,
        **(extra or {}),
    }
    key: bytes = record.key or b""
    value: bytes = record.value or b""
    whole = OutgoingRecord(topic, key, value, {**original, **added}, "artstore.dlq")
    if whole.size <= max_bytes - _HEADROOM:
        return whole
    reference = {
        "type": REFERENCE_TYPE,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key_bytes": len(key),
        "value_bytes": len(value),
        "header_count": len(original),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    }
    return OutgoingRecord(
        topic,
        key if len(key) <= _MAX_REFERENCE_KEY else b"",
        json.dumps(reference).encode(),
        {**added, REFERENCE: "true"},
        "artstore.dlq",
    )


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def _int(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        return -1


def _time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
