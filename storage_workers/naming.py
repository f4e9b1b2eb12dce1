"""Where a file lives in an element, and what it is called there (SPEC §3 layout and naming)."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from uuid import UUID

MAX_STORAGE_FILENAME = 200
"""Characters, as SPEC §3 says."""
MAX_STORAGE_FILENAME_BYTES = 228
"""UTF-8 bytes: leaves room within the usual 255-byte file-name limit for ``.attr.json`` and a
temporary suffix, so a Cyrillic name of 200 characters (400 bytes) is cut instead of failing."""
MAX_USERNAME = 32
MAX_EXTENSION = 16
ELLIPSIS = "..."
SIDECAR_SUFFIX = ".attr.json"

_ALLOWED_PUNCTUATION = frozenset("-.+()[]@,=~")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,15}$")
_FILE_ID = re.compile(
    r"_(\d{8}T\d{6})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\.[^./]*)?$"
)


def sanitise(text: str, *, fallback: str) -> str:
    """A name part without separators, control characters or ``..``; letters of any script kept.

    Everything that is not a letter, digit or harmless punctuation becomes ``_``; runs of ``_``
    and of ``.`` collapse; leading and trailing dots, dashes and underscores go.
    """
    text = unicodedata.normalize("NFC", text)
    out = []
    for char in text:
        if char.isalnum() or char in _ALLOWED_PUNCTUATION:
            out.append(char)
        else:
            out.append("_")
    cleaned = re.sub(r"_+", "_", re.sub(r"\.{2,}", ".", "".join(out)))
    cleaned = cleaned.strip("._-")
    return cleaned or fallback


def split_extension(original_filename: str) -> tuple[str, str]:
    """(stem, extension) of a client's file name; only a short alphanumeric suffix counts."""
    base = re.split(r"[/\\]", original_filename)[-1]
    dot = base.rfind(".")
    if dot > 0:
        ext = base[dot:]
        if _EXTENSION.match(ext):
            return base[:dot], ext.lower()
    return base, ""


def _fits(name: str) -> bool:
    return len(name) <= MAX_STORAGE_FILENAME and len(name.encode()) <= MAX_STORAGE_FILENAME_BYTES


def storage_filename(
    original_filename: str, username: str, created_at: datetime, file_id: UUID
) -> str:
    """``{stem}_{username}_{YYYYMMDDTHHMMSS}_{file_id}{ext}``, cut to fit with ``...``."""
    stem, ext = split_extension(original_filename)
    stem = sanitise(stem, fallback="file")
    user = sanitise(username, fallback="unknown")[:MAX_USERNAME]
    stamp = created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    tail = f"_{user}_{stamp}_{file_id}{ext}"
    name = stem + tail
    if _fits(name):
        return name
    while stem and not _fits(stem + ELLIPSIS + tail):
        stem = stem[:-1]
    return stem + ELLIPSIS + tail


def storage_path(created_at: datetime, filename: str) -> str:
    """``YYYY/MM/DD/HH/<filename>`` in UTC, relative to the element root."""
    return f"{created_at.astimezone(UTC):%Y/%m/%d/%H}/{filename}"


def sidecar_path(data_path: str) -> str:
    """The sidecar key beside a data file."""
    return data_path + SIDECAR_SUFFIX


def is_sidecar(key: str) -> bool:
    """True for ``*.attr.json`` keys."""
    return key.endswith(SIDECAR_SUFFIX)


def file_id_of(key: str) -> UUID | None:
    """The file id encoded in a data file's or sidecar's name, or None if it has none."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(SIDECAR_SUFFIX):
        name = name[: -len(SIDECAR_SUFFIX)]
    match = _FILE_ID.search(name)
    return UUID(match.group(2)) if match else None
