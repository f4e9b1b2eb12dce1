"""RFC 9110 ranges and conditionals, and RFC 6266 Content-Disposition: pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

from events import download_filename

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE | re.ASCII)
#: Byte positions beyond any representation we hold (and within what ``int()`` parses quickly):
#: a longer run of digits stands for "beyond the end", whatever its value.
_MAX_POSITION_DIGITS = 18
_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


@dataclass(frozen=True)
class Span:
    """An inclusive byte range of a representation."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """The range is valid but selects nothing (answer 416 with ``bytes */size``)."""


def parse_range(header: str | None, size: int) -> Span | None:
    """The single range a ``Range`` header selects, or None to send the whole content.

    Headers we may ignore (RFC 9110 §14.2) are ignored: other units, syntax errors and
    multiple ranges. Raises :class:`Unsatisfiable` when the range selects no byte.
    """
    if header is None or "," in header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return Span(max(0, size - suffix), size - 1)
    start = _position(first)
    if last != "" and _position(last) < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise Unsatisfiable
    end = _position(last) if last != "" else size - 1
    return Span(start, min(end, size - 1))


def _position(digits: str) -> int:
    """A byte position; any number too long to be a real one counts as ``10**18``, which lies
    beyond every representation, so a client may send as many digits as it likes."""
    digits = digits.lstrip("0") or "0"
    if len(digits) > _MAX_POSITION_DIGITS:
        return int(10**_MAX_POSITION_DIGITS)
    return int(digits)


def entity_tag(checksum: str) -> str:
    """The strong ETag of content: its sha256, quoted."""
    return f'"{checksum}"'


def _tags(header: str) -> list[tuple[bool, str]]:
    return [(bool(weak), tag) for weak, tag in _ETAG.findall(header)]


def none_match(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (weak comparison): answer 304."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag == etag for _, tag in _tags(header))


def if_match_fails(header: str | None, etag: str) -> bool:
    """True when ``If-Match`` is present and no tag matches strongly: answer 412."""
    if header is None or header.strip() == "*":
        return False
    return not any(tag == etag and not weak for weak, tag in _tags(header))


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7), e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def if_range_holds(header: str | None, etag: str, last_modified: str) -> bool:
    """True when the Range may be honoured (RFC 9110 §13.1.5).

    An entity tag must be this strong ETag. An HTTP-date must exactly match ``last_modified``
    and only validates when that is a strong validator (§8.8.2.2): it is here, because a
    file's content never changes once stored (updates change metadata, never bytes).
    """
    if header is None:
        return True
    value = header.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return value == last_modified


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback ``filename`` and the name as UTF-8 ``filename*``.

    Both carry the name :func:`events.download_filename` makes of the original: its last
    segment (``a/../b.txt`` -> ``b.txt``) without control or bidirectional characters, and
    ``download`` where nothing usable is left (``..``), so that no recipient is offered a path,
    a header break or a name that reads differently from what it is.
    """
    name = download_filename(filename, "download")
    fallback = (
        "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"%' else "_" for c in name).strip()
        or "download"
    )
    encoded = quote(name, safe="")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
