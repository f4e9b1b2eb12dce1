"""Dead letters as operators see them: ids that parse, filters, payloads, and no credential
shown — whichever door shows them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from events import read_headers
from facade.dead_letters import DeadLetterQuery, RedriveRequest
from operations.dead_letter_queue import DeadLetter, DeadLetterFilter, parse_letter_id
from operations.dead_letter_views import detail, redact_text, redacted_headers, summary

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYV90ZXN0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def letter(value: bytes = b"{}", **headers: str) -> DeadLetter:
    base = {
        "dlq_source_topic": "t1.artstore.uploads.rw",
        "dlq_source_partition": "2",
        "dlq_source_offset": "7",
        "dlq_consumer_group": "t1.artstore.storage.uploads.rw",
        "dlq_reason": "retries_exhausted",
        "dlq_error_class": "BackendError",
        "dlq_error": "away",
        "dlq_last_failed_at": "2026-01-10T09:00:00+00:00",
        **headers,
    }
    return DeadLetter(
        topic="t1.artstore.dlq",
        partition=1,
        offset=5,
        written_at=datetime(2026, 1, 10, 9, 0, 1, tzinfo=UTC),
        key=b"k",
        value=value,
        headers=base,
        dead=read_headers(base),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0/0", (0, 0)),
        ("2/9223372036854775807", (2, 2**63 - 1)),
        ("2/9223372036854775808", None),
        ("100001/0", None),
        ("-1/0", None),
        ("1/2/3", None),
        ("1 /2", None),
        ("\uff10/1", None),  # a full-width digit is not a digit here
        ("", None),
    ],
)
def test_letter_ids_parse_only_as_partition_and_offset(
    text: str, expected: tuple[int, int] | None
) -> None:
    assert parse_letter_id(text) == expected


def test_credentials_never_show() -> None:
    shown = redacted_headers(
        {
            "authorization": f"Bearer {JWT}",
            "Proxy-Authorization": "Basic dXNlcjpwYXNz",
            "x-api-key": "plain-secret",
            "cookie": "session=abc",
            "note": f"forwarded with bearer {JWT[:20]}x and {JWT}",
            "ce_type": "artstore.upload.requested.v1",
        }
    )
    assert shown["authorization"] == "Bearer [redacted]"
    assert shown["Proxy-Authorization"] == "Basic [redacted]"
    assert shown["x-api-key"] == shown["cookie"] == "[redacted]"
    assert "eyJ" not in shown["note"]
    assert shown["ce_type"] == "artstore.upload.requested.v1"
    assert redact_text(f"token {JWT} refused") == "token [redacted] refused"


def test_a_letter_in_full_hides_tokens_in_headers_error_and_payload() -> None:
    payload = json.dumps({"data": {"note": JWT, "list": [f"Bearer {JWT}"]}}).encode()
    shown = detail(letter(payload, authorization=f"Bearer {JWT}", dlq_error=f"bad {JWT}"))
    assert JWT not in json.dumps(shown)
    assert shown["payload"]["data"]["note"] == "[redacted]"
    assert shown["dead_letter"]["error"] == "bad [redacted]"
    assert shown["id"] == "1/5"


def test_a_payload_nested_too_deep_or_not_json_is_shown_as_text() -> None:
    deep = b"[" * 500 + b"]" * 500
    assert letter(deep).payload() == deep.decode()
    assert letter(b"\xff{not json").payload() == "\ufffd{not json"
    assert letter(b'{"a": [1]}').payload() == {"a": [1]}


def test_filters_match_logical_topics_ids_and_times_without_a_zone() -> None:
    one = letter()
    assert DeadLetterFilter(source_topic="uploads.rw").matches(one)
    assert DeadLetterFilter(source_topic="t1.artstore.uploads.rw").matches(one)
    assert not DeadLetterFilter(source_topic="rw").matches(one)
    assert DeadLetterFilter(ids=frozenset({"1/5"})).matches(one)
    assert not DeadLetterFilter(ids=frozenset({"1/6"})).matches(one)
    assert DeadLetterFilter(error="BackendError").matches(one)  # the error class
    assert DeadLetterFilter(error="retries_exhausted").matches(one)  # the reason
    assert DeadLetterFilter(error="awa").matches(one)  # a part of the message
    assert not DeadLetterFilter(error="Backend").matches(one)
    naive = letter(dlq_last_failed_at="2026-01-10T09:00:00")  # a header written by hand
    assert DeadLetterFilter(since=datetime(2026, 1, 1, tzinfo=UTC)).matches(naive)
    assert summary(one)["last_failed_at"] == "2026-01-10T09:00:00+00:00"


def test_parameters_are_bounded_and_ids_canonical() -> None:
    assert RedriveRequest.model_validate({"ids": ["0001/02"]}).ids == ["1/2"]
    query = DeadLetterQuery.model_validate({"since": "2026-01-10T09:00:00"})
    assert query.since == datetime(2026, 1, 10, 9, tzinfo=UTC)
    for bad in (
        {"ids": ["1/99999999999999999999"]},
        {"ids": ["0/1"] * 501},
        {"group": "a\nb"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            RedriveRequest.model_validate(bad)
    for bad_query in ({"limit": 0}, {"limit": 501}, {"offset": 100_001}):
        with pytest.raises(ValidationError):
            DeadLetterQuery.model_validate(bad_query)
