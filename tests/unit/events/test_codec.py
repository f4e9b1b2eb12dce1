"""Strict decoding: every malformed record is refused with the reason that names the fault."""

from __future__ import annotations

import json
import uuid

import pytest

from events import (
    SPECS,
    DecodeFailure,
    EventDecodeError,
    EventTooLarge,
    FileStored,
    Topic,
    TopicNames,
    UploadRequested,
    decode,
    encode,
    new_event,
)
from tests.factories import sample

LIMIT = 1024 * 1024
NAMES = TopicNames("unit")


def _encoded(model=FileStored, token: str | None = None):
    envelope = new_event(sample(model), source="test")
    return envelope, encode(envelope, NAMES, max_bytes=LIMIT, token=token)


def _headers(record):
    return [(k, v.encode()) for k, v in record.headers.items()]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_every_type_round_trips_through_the_codec(spec) -> None:
    token = "header.payload.sig" if spec.kind == "command" else None
    envelope, record = _encoded(spec.model, token)
    got = decode(
        record.value,
        key=record.key,
        headers=_headers(record),
        max_bytes=LIMIT,
        topic=NAMES.logical(record.topic),
    )
    assert got.envelope == envelope
    assert got.key == record.key.decode()
    assert got.token == token
    assert got.headers["ce_type"] == spec.type
    assert got.headers["ce_id"] == envelope.id


def test_temporary_upload_is_routed_to_the_edit_topic() -> None:
    _, record = _encoded(UploadRequested)
    assert record.topic == "unit.uploads.edit"


def _reason(value, key=b"k", headers=(), topic=None, max_bytes=LIMIT) -> EventDecodeError:
    with pytest.raises(EventDecodeError) as info:
        decode(value, key=key, headers=headers, max_bytes=max_bytes, topic=topic)
    return info.value


def test_empty_value_is_not_json() -> None:
    assert _reason(None).reason is DecodeFailure.NOT_JSON
    assert _reason(b"").reason is DecodeFailure.NOT_JSON


@pytest.mark.parametrize("value", [b"{not json", b"\xff\xfe\x00", b'{"a": 1'])
def test_garbage_is_not_json(value: bytes) -> None:
    err = _reason(value)
    assert err.reason is DecodeFailure.NOT_JSON
    assert "not JSON" in err.detail


@pytest.mark.parametrize("value", [b"[]", b"42", b'"x"', b"null", b"{}", b'{"type": 7}'])
def test_json_that_is_not_an_envelope(value: bytes) -> None:
    assert _reason(value).reason is DecodeFailure.NOT_AN_ENVELOPE


def test_unknown_type_names_the_type() -> None:
    err = _reason(json.dumps({"type": "artstore.file.exploded.v9"}).encode())
    assert err.reason is DecodeFailure.UNKNOWN_TYPE
    assert "artstore.file.exploded.v9" in str(err)
    assert err.event_type == "artstore.file.exploded.v9"


def test_future_version_of_a_known_type_is_unknown() -> None:
    _, record = _encoded()
    raw = json.loads(record.value)
    raw["type"] = "artstore.file.stored.v2"
    assert _reason(json.dumps(raw).encode(), key=record.key).reason is DecodeFailure.UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("path", "value", "mentions"),
    [
        (("data", "file", "checksum"), "nope", "data.file.checksum"),
        (("data", "file", "file_size"), -5, "data.file.file_size"),
        (("data", "surprise"), 1, "data.surprise"),
        (("specversion",), "0.3", "specversion"),
        (("time",), "yesterday", "time"),
        (("source",), "", "source"),
    ],
)
def test_schema_violations_name_the_field(path, value, mentions: str) -> None:
    _, record = _encoded()
    raw = json.loads(record.value)
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    err = _reason(json.dumps(raw).encode(), key=record.key)
    assert err.reason is DecodeFailure.INVALID_SCHEMA
    assert mentions in err.detail
    assert err.event_type == "artstore.file.stored.v1"


def test_missing_data_field_is_a_schema_violation() -> None:
    _, record = _encoded()
    raw = json.loads(record.value)
    del raw["data"]["file"]["checksum"]
    err = _reason(json.dumps(raw).encode(), key=record.key)
    assert err.reason is DecodeFailure.INVALID_SCHEMA
    assert "checksum" in err.detail


def test_missing_key_is_refused() -> None:
    _, record = _encoded()
    assert _reason(record.value, key=None).reason is DecodeFailure.MISSING_KEY


def test_wrong_key_is_refused_and_says_which_key_was_expected() -> None:
    envelope, record = _encoded()
    err = _reason(record.value, key=str(uuid.uuid4()).encode())
    assert err.reason is DecodeFailure.KEY_MISMATCH
    assert envelope.subject in err.detail


def test_subject_must_match_the_key() -> None:
    _, record = _encoded()
    raw = json.loads(record.value)
    raw["subject"] = "someone-else"
    err = _reason(json.dumps(raw).encode(), key=record.key)
    assert err.reason is DecodeFailure.KEY_MISMATCH


def test_event_on_the_wrong_topic_is_refused() -> None:
    _, record = _encoded()
    err = _reason(record.value, key=record.key, topic=Topic.UPLOADS_RW)
    assert err.reason is DecodeFailure.WRONG_TOPIC
    assert "files" in err.detail


def test_oversized_record_is_refused_before_parsing() -> None:
    err = _reason(b"x" * 2048, max_bytes=1024)
    assert err.reason is DecodeFailure.TOO_LARGE
    assert "1024" in err.detail


def test_headers_count_towards_the_size_limit() -> None:
    _, record = _encoded()
    big = [("authorization", b"Bearer " + b"a" * LIMIT)]
    assert _reason(record.value, key=record.key, headers=big).reason is DecodeFailure.TOO_LARGE


def test_encode_refuses_an_event_over_the_limit() -> None:
    payload = sample(FileStored)
    huge = payload.file.model_copy(update={"description": "x" * 5000})
    envelope = new_event(FileStored(file=huge), source="test")
    with pytest.raises(EventTooLarge, match="claim check") as info:
        encode(envelope, NAMES, max_bytes=4096)
    assert info.value.size > 4096
    assert info.value.event_type == "artstore.file.stored.v1"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (b"Bearer abc.def.ghi", "abc.def.ghi"),
        (b"bearer   abc", "abc"),
        (b"Basic dXNlcjpwYXNz", None),
        (b"Bearer ", None),
        (b"", None),
    ],
)
def test_bearer_token_is_taken_from_the_authorization_header(header: bytes, token) -> None:
    _, record = _encoded()
    got = decode(record.value, key=record.key, headers=[("Authorization", header)], max_bytes=LIMIT)
    assert got.token == token


def test_encode_refuses_an_envelope_whose_type_does_not_match_its_payload() -> None:
    envelope = new_event(sample(FileStored), source="test")
    forged = envelope.model_copy(update={"type": "artstore.file.deleted.v1"})
    with pytest.raises(ValueError, match="does not match"):
        encode(forged, NAMES, max_bytes=LIMIT)


def test_a_type_header_that_lies_does_not_change_what_is_decoded() -> None:
    envelope, record = _encoded()
    lying = [
        (k, b"artstore.upload.requested.v1" if k == "ce_type" else v) for k, v in _headers(record)
    ]
    got = decode(record.value, key=record.key, headers=lying, max_bytes=LIMIT, topic=Topic.FILES)
    assert got.envelope == envelope


def test_schema_violations_are_named_the_same_with_the_type_header() -> None:
    _, record = _encoded()
    raw = json.loads(record.value)
    raw["data"]["file"]["checksum"] = "nope"
    with pytest.raises(EventDecodeError) as err:
        decode(
            json.dumps(raw).encode(),
            key=record.key,
            headers=_headers(record),
            max_bytes=LIMIT,
        )
    assert err.value.reason is DecodeFailure.INVALID_SCHEMA
    assert "data.file.checksum" in err.value.detail
