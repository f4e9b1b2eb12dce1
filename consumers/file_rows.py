"""The ``files`` row of a sidecar's state, and the text it is searched by. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any, TypeVar

from consumers.changes import FileRow
from events import FileRecord

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_MAX_EXTENSION = 16


def file_row(record: FileRecord) -> FileRow:
    """The ``files`` row of a sidecar's state."""
    tags = tuple(clean(tag) for tag in record.tags)
    custom = clean(dict(record.custom_attributes))
    description = clean(record.description)
    filename = clean(record.original_filename)
    return FileRow(
        file_id=record.file_id,
        element_id=record.element_id,
        original_filename=filename,
        storage_filename=clean(record.storage_filename),
        storage_path=clean(record.storage_path),
        extension=extension_of(filename),
        file_size=record.file_size,
        content_type=clean(record.content_type),
        checksum=record.checksum,
        created_at=record.created_at,
        updated_at=record.updated_at,
        created_by_id=clean(record.created_by_id),
        created_by_username=clean(record.created_by_username),
        created_by_fullname=clean(record.created_by_fullname),
        description=description,
        version=record.version,
        retention_policy=record.retention_policy.value,
        ttl_expires_at=record.ttl_expires_at,
        tags=tags,
        metadata=clean(dict(record.metadata)),
        custom_attributes=custom,
        language=language_of(filename, description, tags, custom),
        search_extra=" ".join((*tags, *attribute_words(custom))),
        document_id=record.document,
        document_version=record.document_number,
        retain_until=record.retain_until,
        legal_hold=None
        if record.legal_hold is None
        else clean(record.legal_hold.model_dump(mode="json")),
    )


def extension_of(filename: str) -> str:
    """Lowercased extension without the dot ("" when there is none or it is implausibly long)."""
    if "/" in filename or "\\" in filename:
        suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    else:  # the common case, and what PurePosixPath.suffix does for a bare name
        dot = filename.rfind(".")
        suffix = filename[dot:] if 0 < dot < len(filename) - 1 else ""
    if not suffix or len(suffix) - 1 > _MAX_EXTENSION:
        return ""
    return suffix[1:].lower()


def attribute_words(custom: dict[str, Any]) -> list[str]:
    """The values of custom attributes as text (keys are not searchable words)."""
    words: list[str] = []
    for value in custom.values():
        for item in value if isinstance(value, list) else [value]:
            if item is None or isinstance(item, bool):
                continue
            words.append(str(item))
    return words


def language_of(
    filename: str, description: str | None, tags: Iterable[str], custom: dict[str, Any]
) -> str:
    """The document's main language: an explicit ``language`` attribute, else Cyrillic or not.

    Informational (shown and filterable); the search vector always carries both stemmings.
    """
    declared = str(custom.get("language", "")).lower()
    if declared in {"ru", "rus", "russian"}:
        return "russian"
    if declared in {"en", "eng", "english"}:
        return "english"
    text = " ".join((filename, description or "", *tags))
    return "russian" if _CYRILLIC.search(text) else "english"


T = TypeVar("T")


def clean(value: T) -> T:
    """Replace NUL characters, which PostgreSQL text and jsonb refuse, everywhere in a value."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value  # type: ignore[return-value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clean(v) for v in value]  # type: ignore[return-value]
    return value
