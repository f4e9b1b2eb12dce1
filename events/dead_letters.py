"""Dead letters: one record shape for every consumer that gives up on a record.

A dead letter keeps the original key and value bytes and adds headers saying where the record
came from and why it is here. A record too large to be dead-lettered whole (a dead letter must
itself fit under the broker's message limit) is dead-lettered as a *reference*: a small JSON
value naming its coordinates (source topic, partition, offset), its size and sha256, so an
operator can still find it in the source topic while it is retained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aiokafka.structs import ConsumerRecord

from events.codec import OutgoingRecord

SOURCE_TOPIC = "dlq_source_topic"
SOURCE_PARTITION = "dlq_source_partition"
SOURCE_OFFSET = "dlq_source_offset"
REASON = "dlq_reason"
ERROR = "dlq_error"
ATTEMPTS = "dlq_attempts"
SERVICE = "dlq_service"
ELEMENT_ID = "dlq_element_id"
REFERENCE = "dlq_reference"
"""``"true"`` when the value is a reference to the record instead of its bytes."""

HEADERS = frozenset(
    {SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, REASON, ERROR, ATTEMPTS, SERVICE, ELEMENT_ID}
    | {REFERENCE}
)
"""Every header a dead letter adds (an original header of the same name is replaced)."""

MAX_ERROR_CHARS = 1000
#: Room kept under the message limit for the headers a dead letter adds.
_HEADROOM = 8 * 1024
#: A longer original key is not kept in a reference (the coordinates name the record).
_MAX_REFERENCE_KEY = 256
REFERENCE_TYPE = "artstore.dlq.reference.v1"


def dead_letter(
    record: ConsumerRecord[Any, Any],
    *,
    topic: str,
    reason: str,
    error: str,
    service: str,
    max_bytes: int,
    attempts: int = 1,
    extra: Mapping[str, str] | None = None,
) -> OutgoingRecord:
    """``record`` as a dead letter for ``topic`` (the physical DLQ topic name).

    Original headers are kept, their values decoded as UTF-8 with replacement characters where
    they are not UTF-8; key and value bytes are kept exactly — unless the whole would not fit
    under ``max_bytes``, then the value is a reference to the record (see the module).
    """
    added = {
        SOURCE_TOPIC: record.topic,
        SOURCE_PARTITION: str(record.partition),
        SOURCE_OFFSET: str(record.offset),
        REASON: reason,
        ERROR: _printable(error)[:MAX_ERROR_CHARS],
        ATTEMPTS: str(attempts),
        SERVICE: service,
        **(extra or {}),
    }
    original = {
        name: (raw or b"").decode("utf-8", "replace")
        for name, raw in record.headers or ()
        if name not in HEADERS
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
