"""Compare the index with an element's sidecars (the source of truth) and list every difference."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter

from base.settings import Settings
from consumers.changes import FileRow
from consumers.file_rows import file_row
from consumers.sql import quote_ident
from consumers.store_sql import create_pool
from events import ElementBackend
from storage_workers import StorageBackend, decode_sidecar, open_backend

SIDECAR_SUFFIX = ".attr.json"
_COMPARED = [name for name in FileRow._fields if name != "file_id"]


@dataclass(frozen=True)
class Difference:
    """One way the index and the element disagree."""

    kind: str  # missing_in_index | missing_on_storage | deleted_in_index | field | unreadable
    # | fixity_failed | fixity_unreadable (the file's last fixity check)
    file_id: str | None
    detail: str
    field: str | None = None
    index: Any = None
    storage: Any = None

    def __str__(self) -> str:
        who = self.file_id or "?"
        if self.kind == "field":
            return f"{who}: {self.field} differs: index={self.index!r} storage={self.storage!r}"
        return f"{who}: {self.kind}: {self.detail}"


class UnknownElement(LookupError):
    """The index has never heard of this element."""


def _sidecar_keys(backend: StorageBackend) -> Iterator[str]:
    for info in backend.list(""):
        if info.key.endswith(SIDECAR_SUFFIX) and not info.key.startswith(".artstore/"):
            yield info.key


def _read_sidecars(
    backend: StorageBackend, element_id: str
) -> tuple[dict[UUID, FileRow], list[Difference]]:
    rows: dict[UUID, FileRow] = {}
    problems: list[Difference] = []
    for key in _sidecar_keys(backend):
        try:
            sidecar = decode_sidecar(backend.read_bytes(key), key=key, element_id=element_id)
            row = file_row(sidecar.to_record())
        except Exception as exc:
            problems.append(Difference("unreadable", None, f"{key}: {exc}"))
            continue
        rows[row.file_id] = row
    return rows, problems


def _normalise(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return list(value)
    return value


async def check_element(
    settings: Settings, element_id: str, *, schema: str = "public"
) -> list[Difference]:
    """Every difference between the index's rows of ``element_id`` and its sidecars."""
    pool = await create_pool(settings.database_url, application_name="artstore-check")
    try:
        s = quote_ident(schema)
        element = await pool.fetchrow(
            f"SELECT backend FROM {s}.elements WHERE element_id = $1",  # noqa: S608
            element_id,
        )
        if element is None or element["backend"] is None:
            raise UnknownElement(f"the index has no backend for element {element_id}")
        indexed = {
            r["file_id"]: r
            for r in await pool.fetch(
                f"SELECT * FROM {s}.files WHERE element_id = $1",  # noqa: S608
                element_id,
            )
        }
    finally:
        await pool.close()
    backend = open_backend(
        TypeAdapter(ElementBackend).validate_python(element["backend"]),
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )
    stored, differences = await asyncio.to_thread(_read_sidecars, backend, element_id)
    for file_id, row in sorted(stored.items(), key=lambda item: str(item[0])):
        record = indexed.get(file_id)
        if record is None:
            differences.append(Difference("missing_in_index", str(file_id), "sidecar not indexed"))
            continue
        if record["deleted_at"] is not None:
            differences.append(
                Difference("deleted_in_index", str(file_id), "indexed as deleted, sidecar exists")
            )
        for name in _COMPARED:
            ours, theirs = _normalise(record[name]), _normalise(getattr(row, name))
            if ours != theirs:
                differences.append(
                    Difference("field", str(file_id), "", field=name, index=ours, storage=theirs)
                )
    for file_id, record in indexed.items():
        if file_id not in stored and record["deleted_at"] is None:
            differences.append(
                Difference("missing_on_storage", str(file_id), "indexed, but no sidecar")
            )
    differences.extend(fixity_differences(indexed.values()))
    return differences


def fixity_differences(rows: Iterable[Any]) -> list[Difference]:
    """Live files whose last fixity check did not find them sound."""
    found = []
    for record in sorted(rows, key=lambda r: str(r["file_id"])):
        fixity = record["fixity"] or {}
        status = fixity.get("status")
        if record["deleted_at"] is None and status in ("failed", "unreadable"):
            found.append(
                Difference(
                    f"fixity_{status}",
                    str(record["file_id"]),
                    f"{fixity.get('kind') or status} at {fixity.get('checked_at')}: "
                    f"{fixity.get('detail')}",
                )
            )
    return found


def as_json(differences: list[Difference]) -> str:
    """The differences as a JSON array (for scripts)."""
    return json.dumps([asdict(d) for d in differences], default=str, ensure_ascii=False)
