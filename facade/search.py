"""Search parameters: parsed and validated without I/O, so every bad input is a clear 400."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from facade.problems import BadRequest, utc_parameter

SORT_COLUMNS = ("relevance", "created_at", "file_size", "filename")
RETENTION_POLICIES = ("temporary", "permanent")
LANGUAGES = ("english", "russian")
MAX_BIGINT = 2**63 - 1
MAX_VALUE_LENGTH = 256
MAX_VALUES = 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SINGLE = {
    "q",
    "filename",
    "username",
    "size_min",
    "size_max",
    "created_from",
    "created_to",
    "retention_policy",
    "language",
    "sort",
    "limit",
    "cursor",
    "all_versions",
}
_MULTI = {"extension", "tag", "tags", "element"}


@dataclass(frozen=True)
class AttributeFilter:
    """``attr.<key>=<value>``: the value matches as typed JSON, as a string, or inside a list."""

    key: str
    value: str

    def containments(self) -> list[dict[str, Any]]:
        """JSON documents ``custom_attributes`` may contain for this filter to match."""
        candidates: list[Any] = [self.value]
        try:
            typed = json.loads(self.value)
        except ValueError:
            typed = None
        if isinstance(typed, bool | int) or (isinstance(typed, float) and math.isfinite(typed)):
            candidates.insert(0, typed)
        docs: list[dict[str, Any]] = []
        for candidate in candidates:
            docs.append({self.key: candidate})
            docs.append({self.key: [candidate]})
        return docs


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: the sort value and the file id of its last item."""

    value: Any
    file_id: UUID


@dataclass(frozen=True)
class SearchSpec:
    """A validated search."""

    q: str | None = None
    filename: str | None = None
    extensions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    username: str | None = None
    size_min: int | None = None
    size_max: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    elements: tuple[str, ...] = ()
    retention_policy: str | None = None
    language: str | None = None
    attributes: tuple[AttributeFilter, ...] = ()
    all_versions: bool = False
    """Every version of each document, not only its latest."""
    sort: str = "created_at"
    descending: bool = True
    limit: int = 50
    cursor: Cursor | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """Identifies the result set (everything but page size and position)."""
        basis = replace(self, limit=0, cursor=None)
        return hashlib.sha256(repr(basis).encode()).hexdigest()[:16]

    def cache_key(self) -> str:
        """Identifies this exact page."""
        position = "" if self.cursor is None else f"{self.cursor.value!r}/{self.cursor.file_id}"
        return hashlib.sha256(f"{self.fingerprint()}|{self.limit}|{position}".encode()).hexdigest()

    def encode_cursor(self, value: Any, file_id: UUID) -> str:
        """An opaque cursor for the page after the item with ``value`` and ``file_id``."""
        if isinstance(value, datetime):
            value = value.isoformat()
        raw = json.dumps({"f": self.fingerprint(), "v": value, "id": str(file_id)})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def parse_search(
    params: Sequence[tuple[str, str]],
    *,
    default_limit: int = 50,
    max_limit: int = 200,
    max_query_length: int = 512,
) -> SearchSpec:
    """Validate query parameters into a :class:`SearchSpec`; ``BadRequest`` names the fault."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    attributes: list[AttributeFilter] = []
    for name, value in params:
        limit = max_query_length if name == "q" else MAX_VALUE_LENGTH
        _check_text(name, value, limit)
        if name.startswith("attr."):
            key = name[5:]
            if not _ATTRIBUTE_KEY.match(key):
                raise BadRequest(name, "attribute names use letters, digits and _ . : - (1-64)")
            attributes.append(AttributeFilter(key, value))
        elif name in _SINGLE:
            if name in single:
                raise BadRequest(name, "give this parameter once")
            single[name] = value
        elif name in _MULTI:
            values = multi.setdefault("tags" if name == "tag" else name, [])
            values.extend(v.strip() for v in value.split(",") if v.strip())
            if len(values) > MAX_VALUES:
                raise BadRequest(name, f"at most {MAX_VALUES} values")
        else:
            raise BadRequest(_printable(name), "unknown parameter")
    if len(attributes) > MAX_VALUES:
        raise BadRequest("attr.*", f"at most {MAX_VALUES} attribute filters")

    q = single.get("q", "").strip() or None
    sort, descending = _sort(single.get("sort"), has_query=q is not None)
    spec = SearchSpec(
        q=q,
        filename=single.get("filename") or None,
        extensions=tuple(sorted({e.lower().lstrip(".") for e in multi.get("extension", [])})),
        tags=tuple(sorted(set(multi.get("tags", [])))),
        username=single.get("username") or None,
        size_min=_integer(single, "size_min"),
        size_max=_integer(single, "size_max"),
        created_from=_instant(single, "created_from"),
        created_to=_instant(single, "created_to"),
        elements=tuple(sorted(set(multi.get("element", [])))),
        retention_policy=_choice(single, "retention_policy", RETENTION_POLICIES),
        language=_choice(single, "language", LANGUAGES),
        attributes=tuple(sorted(attributes, key=lambda a: (a.key, a.value))),
        all_versions=_boolean(single, "all_versions"),
        sort=sort,
        descending=descending,
        limit=_limit(single.get("limit"), default_limit, max_limit),
    )
    if spec.size_min is not None and spec.size_max is not None and spec.size_min > spec.size_max:
        raise BadRequest("size_min", "must not exceed size_max")
    if spec.created_from and spec.created_to and spec.created_from > spec.created_to:
        raise BadRequest("created_from", "must not be after created_to")
    if "cursor" in single:
        spec = replace(spec, cursor=_decode_cursor(spec, single["cursor"]))
    return spec


def _check_text(name: str, value: str, limit: int) -> None:
    if _CONTROL.search(name) or len(name) > 80:
        raise BadRequest(_printable(name), "parameter names must be short printable text")
    if _CONTROL.search(value):
        raise BadRequest(name, "control characters are not allowed")
    if len(value) > limit:
        raise BadRequest(name, f"at most {limit} characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise BadRequest(name, "not valid Unicode text")


def _printable(name: str) -> str:
    return _CONTROL.sub("?", name)[:80]


def _sort(value: str | None, *, has_query: bool) -> tuple[str, bool]:
    if value is None or value == "":
        return ("relevance", True) if has_query else ("created_at", True)
    descending = value.startswith("-")
    column = value.lstrip("-+")
    if column not in SORT_COLUMNS:
        raise BadRequest("sort", f"one of {', '.join(SORT_COLUMNS)} (prefix '-' for descending)")
    if column == "relevance":
        if not has_query:
            raise BadRequest("sort", "relevance needs a query (q)")
        return column, True
    return column, descending


def _integer(single: dict[str, str], name: str) -> int | None:
    raw = single.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(name, "a whole number of bytes, 0 or more")
    value = int(raw)
    if value > MAX_BIGINT:
        raise BadRequest(name, "too large")
    return value


def _instant(single: dict[str, str], name: str) -> datetime | None:
    raw = single.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(name, "an ISO 8601 date or date-time, e.g. 2026-01-31T12:00:00Z") from None
    return utc_parameter(name, parsed)


def _choice(single: dict[str, str], name: str, allowed: Sequence[str]) -> str | None:
    raw = single.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise BadRequest(name, f"one of {', '.join(allowed)}")
    return raw


def _boolean(single: dict[str, str], name: str) -> bool:
    raw = single.get(name, "").lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise BadRequest(name, "true or false")


def _limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest("limit", f"a number from 1 to {maximum}")
    return int(raw)


def _decode_cursor(spec: SearchSpec, raw: str) -> Cursor:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(decoded, dict) or set(decoded) != {"f", "v", "id"}:
            raise ValueError("shape")
        file_id = UUID(str(decoded["id"]))
        value = decoded["v"]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor", "not a cursor this service issued") from None
    if decoded["f"] != spec.fingerprint():
        raise BadRequest("cursor", "belongs to a different search; start again without it")
    return Cursor(_cursor_value(spec.sort, value), file_id)


def _cursor_value(sort: str, value: Any) -> Any:
    ok = {
        "relevance": isinstance(value, float | int) and not isinstance(value, bool),
        "file_size": isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_BIGINT,
        "filename": isinstance(value, str),
        "created_at": isinstance(value, str),
    }[sort]
    if not ok:
        raise BadRequest("cursor", "not a cursor this service issued")
    if sort == "created_at":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise BadRequest("cursor", "not a cursor this service issued") from None
    if sort == "relevance":
        return float(value)
    if sort == "filename" and _CONTROL.search(value):
        raise BadRequest("cursor", "not a cursor this service issued")
    return value
