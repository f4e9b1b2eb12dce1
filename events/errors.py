"""Typed errors of the event contract. Each names what was wrong so a DLQ entry can say why."""

from __future__ import annotations

from enum import StrEnum


class DecodeFailure(StrEnum):
    """The ways a record can fail strict decoding."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_AN_ENVELOPE = "not_an_envelope"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_SCHEMA = "invalid_schema"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    WRONG_TOPIC = "wrong_topic"


class EventDecodeError(ValueError):
    """A record could not be turned into a known, valid event.

    ``reason`` is machine-readable (for metrics and the DLQ), ``detail`` tells a person what to fix,
    ``event_type`` is set when the record got far enough to name its type.
    """

    def __init__(self, reason: DecodeFailure, detail: str, *, event_type: str | None = None):
        self.reason = reason
        self.detail = detail
        self.event_type = event_type
        super().__init__(f"{reason.value}: {detail}")


class EventTooLarge(ValueError):
    """An event would exceed the broker's message size limit; nothing was published."""

    def __init__(self, event_type: str, size: int, limit: int):
        self.event_type = event_type
        self.size = size
        self.limit = limit
        super().__init__(
            f"{event_type} is {size} bytes, over the {limit}-byte message limit; "
            "large content belongs in staging (claim check), not in the event"
        )
