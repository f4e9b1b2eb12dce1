"""Dead letters keep a record's bytes, or a reference to it when it is too large to keep."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord

from events import DecodeFailure, EventDecodeError, Failure, dead_letter, decode, read_headers
from events import dead_letters as dlq


def record(
    value: bytes, key: bytes = b"k", headers: list[tuple[str, bytes]] | None = None
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t.files",
        partition=2,
        offset=41,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=headers or [],
    )


def test_a_dead_letter_keeps_the_bytes_and_says_where_from_and_why() -> None:
    letter = dead_letter(
        record(b"\xff{", key=b"\xfe", headers=[("x", b"\xff"), (dlq.REASON, b"forged")]),
        topic="t.dlq",
        group="g.files",
        failure=Failure.of("not_json", "bad\nvalue"),
        service="tests",
        max_bytes=64 * 1024,
    )
    assert (letter.topic, letter.key, letter.value) == ("t.dlq", b"\xfe", b"\xff{")
    assert letter.headers[dlq.SOURCE_TOPIC] == "t.files"
    assert letter.headers[dlq.SOURCE_PARTITION] == "2"
    assert letter.headers[dlq.SOURCE_OFFSET] == "41"
    assert letter.headers[dlq.REASON] == "not_json"
    assert letter.headers[dlq.ERROR] == "bad value"
    assert letter.headers["x"] == "\ufffd"
    assert dlq.REFERENCE not in letter.headers


def test_a_record_too_large_to_dead_letter_whole_becomes_a_reference() -> None:
    value = b"x" * (64 * 1024)
    letter = dead_letter(
        record(value, key=b"k" * 1000),
        topic="t.dlq",
        group="g.files",
        failure=Failure.of("too_large", "record is too large"),
        service="tests",
        max_bytes=64 * 1024,
    )
    assert letter.size < 64 * 1024
    assert letter.headers[dlq.REFERENCE] == "true"
    assert letter.key == b""
    reference = json.loads(letter.value)
    assert reference["topic"] == "t.files"
    assert (reference["partition"], reference["offset"]) == (2, 41)
    assert reference["value_bytes"] == len(value)
    assert reference["value_sha256"] == hashlib.sha256(value).hexdigest()


def test_a_dead_letter_names_its_group_error_attempts_times_and_correlation() -> None:
    first = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    failure = Failure.of(
        "retries_exhausted", ConnectionResetError("backend away"), attempts=5, first_failed_at=first
    )
    letter = dead_letter(
        record(b"{}", headers=[("correlation_id", b"corr-7")]),
        topic="t.dlq",
        group="t.storage.uploads.rw",
        failure=failure,
        service="tests",
        max_bytes=64 * 1024,
    )
    read = read_headers(letter.headers)
    assert read.coordinates == "t.files/2/41"
    assert read.consumer_group == "t.storage.uploads.rw"
    assert (read.reason, read.error_class, read.error) == (
        "retries_exhausted",
        "ConnectionResetError",
        "backend away",
    )
    assert read.attempts == 5
    assert read.first_failed_at == first
    assert read.last_failed_at is not None
    assert read.last_failed_at >= first
    assert read.correlation_id == "corr-7"


def test_headers_written_by_hand_read_back_as_empty() -> None:
    read = read_headers({dlq.SOURCE_PARTITION: "x"})
    assert (read.source_topic, read.source_partition, read.first_failed_at) == ("", -1, None)


@pytest.mark.parametrize("value", [b"[" * 50_000, b'{"a":' * 50_000, b"1" * 5000])
def test_pathological_json_is_a_decode_error(value: bytes) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(value, key=b"k", max_bytes=10**7)
    assert caught.value.reason is DecodeFailure.NOT_JSON
