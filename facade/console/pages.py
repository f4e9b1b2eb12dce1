"""Keyset pages: a list is cut after ``limit`` rows and continues from an opaque cursor.

No OFFSET scans, so the hundredth page costs what the first does on a million rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from facade.console.errors import ConsoleError

T = TypeVar("T")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the time of its last row and that row's id."""

    at: datetime
    key: str

    def encode(self) -> str:
        """An opaque cursor for the next page."""
        raw = json.dumps({"at": self.at.isoformat(), "key": self.key})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_position(raw: str | None) -> Position | None:
    """The position a cursor names; a 400 when it is not one this console issued."""
    if not raw:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        at = datetime.fromisoformat(body["at"])
        key = body["key"]
        if not isinstance(key, str) or len(key) > 200 or at.tzinfo is None:
            raise ValueError("shape")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise ConsoleError(400, "cursor", "not a page cursor this console issued") from None
    return Position(at, key)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the cursor of the next one (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def cut(rows: list[Any], limit: int, *, at: str, key: str) -> Page[Any]:
    """The first ``limit`` of ``limit + 1`` fetched rows, and where the next page starts."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = Position(rows[-1][at], str(rows[-1][key])).encode() if more and rows else None
    return Page(rows, cursor)
