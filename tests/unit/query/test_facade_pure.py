"""The facade's pure pieces: RFC 9110 ranges and conditionals, RFC 6266, search parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from facade.http_semantics import (
    Span,
    Unsatisfiable,
    content_disposition,
    http_date,
    if_match_fails,
    if_range_holds,
    none_match,
    parse_range,
)
from facade.problems import BadRequest
from facade.search import parse_search


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", Span(0, 0)),
        ("bytes=-1", Span(9, 9)),
        ("bytes=5-", Span(5, 9)),
        ("bytes=8-100", Span(8, 9)),
        ("BYTES = 1 - 2", Span(1, 2)),
        ("bytes=3-2", None),
        ("bytes=0-1,3-4", None),
        ("lines=1-2", None),
        ("bytes=-", None),
    ],
)
def test_ranges(header: str | None, expected: Span | None) -> None:
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=-0", "bytes=99-100"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 10)


DIGITS = "9" * 5000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"bytes=-{DIGITS}", Span(0, 9)),
        (f"bytes=0-{DIGITS}", Span(0, 9)),
        (f"bytes=0000000000000000000000000003-{DIGITS}", Span(3, 9)),
        ("bytes=\u0661-\u0662", None),  # Arabic-Indic digits are not HTTP digits
    ],
)
def test_ranges_with_numbers_of_any_length(header: str, expected: Span | None) -> None:
    assert parse_range(header, 10) == expected


def test_a_start_with_thousands_of_digits_is_beyond_the_end() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(f"bytes={DIGITS}-", 10)


def test_empty_content_has_no_satisfiable_range() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-5", 0)


def test_conditionals() -> None:
    tag = '"abc"'
    assert none_match('W/"abc"', tag)
    assert none_match('"x", "abc"', tag)
    assert not none_match('"x"', tag)
    assert if_match_fails('"x"', tag)
    assert if_match_fails('W/"abc"', tag)  # If-Match compares strongly
    assert not if_match_fails("*", tag)


def test_http_date_is_an_imf_fixdate_in_gmt() -> None:
    moscow = timezone(timedelta(hours=3))
    assert http_date(datetime(1994, 11, 6, 11, 49, 37, 500, tzinfo=moscow)) == (
        "Sun, 06 Nov 1994 08:49:37 GMT"
    )
    assert http_date(datetime(2026, 1, 10, 9, 0, tzinfo=UTC)) == "Sat, 10 Jan 2026 09:00:00 GMT"


@pytest.mark.parametrize(
    ("header", "holds"),
    [
        (None, True),
        ('"abc"', True),
        ('W/"abc"', False),  # If-Range compares strongly
        ('"old"', False),
        ("Sat, 10 Jan 2026 09:00:00 GMT", True),  # exactly the Last-Modified
        ("Sat, 10 Jan 2026 09:00:01 GMT", False),
        ("Saturday, 10-Jan-26 09:00:00 GMT", False),  # the same instant, not the same value
        ("garbage", False),
    ],
)
def test_if_range_takes_a_strong_etag_or_the_exact_last_modified(
    header: str | None, holds: bool
) -> None:
    assert if_range_holds(header, '"abc"', "Sat, 10 Jan 2026 09:00:00 GMT") is holds


def test_content_disposition_keeps_utf8_and_an_ascii_fallback() -> None:
    value = content_disposition('Отчёт "итоги" 2024.pdf')
    assert value.startswith('attachment; filename="')
    assert "filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20%22" in value
    assert value.isascii()


@pytest.mark.parametrize(
    ("original", "offered"),
    [("../x.txt", "x.txt"), ("a\\b\\c.txt", "c.txt"), ("..", "download"), ("dir/", "download")],
)
def test_content_disposition_offers_a_name_never_a_path(original: str, offered: str) -> None:
    value = content_disposition(original)
    assert f'filename="{offered}"' in value
    assert value.endswith(f"filename*=UTF-8''{offered}")


@pytest.mark.parametrize(
    ("original", "offered"),
    [
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override
        ("a\r\nSet-Cookie: x=1.txt", "aSet-Cookie: x=1.txt"),
        ("\u2066name\u2069\u200b.pdf", "name.pdf"),  # isolates, zero-width space
        ("line\u2028break\u2029.txt", "linebreak.txt"),
        ("\u202e\r\n", "download"),
    ],
)
def test_content_disposition_strips_control_and_bidirectional_characters(
    original: str, offered: str
) -> None:
    value = content_disposition(original)
    assert f"filename*=UTF-8''{quote(offered, safe='')}" in value
    assert "%E2%80%AE" not in value
    assert "\r" not in value
    assert "\n" not in value


def test_search_defaults_and_normalisation() -> None:
    spec = parse_search([("q", " dogs "), ("extension", ".PDF,txt"), ("tag", "b"), ("tag", "a")])
    assert (spec.q, spec.sort, spec.descending) == ("dogs", "relevance", True)
    assert spec.extensions == ("pdf", "txt")
    assert spec.tags == ("a", "b")
    assert parse_search([]).sort == "created_at"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ([("sort", "relevance")], "sort"),
        ([("limit", "0")], "limit"),
        ([("size_min", "-1")], "size_min"),
        ([("size_min", "5"), ("size_max", "1")], "size_min"),
        ([("created_from", "yesterday")], "created_from"),
        ([("q", "a\x00")], "q"),
        ([("attr.bad key", "x")], "attr.bad key"),
        ([("nope", "1")], "nope"),
        ([("q", "a"), ("q", "b")], "q"),
        ([("cursor", "!!!")], "cursor"),
    ],
)
def test_bad_parameters_name_themselves(params: list[tuple[str, str]], parameter: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_search(params)
    assert caught.value.extra["parameter"] == parameter


def test_cursors_round_trip_and_are_bound_to_their_search() -> None:
    import uuid

    spec = parse_search([("sort", "file_size")])
    cursor = spec.encode_cursor(42, uuid.UUID(int=7))
    again = parse_search([("sort", "file_size"), ("cursor", cursor)])
    assert again.cursor is not None
    assert again.cursor.value == 42
    with pytest.raises(BadRequest):
        parse_search([("sort", "-file_size"), ("cursor", cursor)])
