"""What a fixity pass checks and what a check concludes: the items of an element in walking
order, the findings, the verdicts, and how hard the auditor tries. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from events import FixityFindingKind, FixityOutcome
from storage_workers.backends import is_temporary
from storage_workers.catalogue import CatalogueEntry
from storage_workers.naming import is_sidecar, sidecar_path

ELEMENT_OWN = ".artstore/"
"""The element's own records (journal, tombstones, templates, fixity state): not files."""


@dataclass(frozen=True, slots=True)
class KnownFile:
    """A file the element's catalogue holds: its data and its sidecar are checked."""

    entry: CatalogueEntry

    @property
    def key(self) -> str:
        return self.entry.storage_path


@dataclass(frozen=True, slots=True)
class UnknownObject:
    """An object on the element that the catalogue does not know."""

    key: str
    has_sidecar: bool


AuditItem = KnownFile | UnknownObject

Expected = tuple[str, int, str, str]
"""A known file as the catalogue records it: storage path, size, sha256, sidecar sha256."""


def sort_key(key: str) -> str:
    """The order a pass walks the element in (and compares its resume cursor with): segment by
    segment, as if each '/' sorted before every other character (no key holds a NUL)."""
    return key.replace("/", "\x00")


def plan_items(keys: Iterable[str], entries: Iterable[CatalogueEntry]) -> list[AuditItem]:
    """Every item a pass checks, in walking order: each known file once (whether or not its
    objects are listed), and every listed key (``backend.list_keys()``) that belongs to no
    known file."""
    known = {e.storage_path: e for e in entries}
    known_keys = set(known) | {sidecar_path(path) for path in known}
    listed = {
        key
        for key in keys
        if not (key in known_keys or key.startswith(ELEMENT_OWN) or is_temporary(key))
    }
    items: list[AuditItem] = [KnownFile(e) for e in known.values()]
    for key in listed:
        if is_sidecar(key) and key[: -len(".attr.json")] in listed:
            continue  # the pair is one unknown object, reported on its data key
        items.append(UnknownObject(key, has_sidecar=sidecar_path(key) in listed))
    items.sort(key=lambda item: sort_key(item.key))
    return items


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with an item."""

    kind: FixityFindingKind
    detail: str
    expected_checksum: str | None = None
    observed_checksum: str | None = None
    expected_size: int | None = None
    observed_size: int | None = None
    attempts: int = 1


@dataclass(slots=True)
class Verdict:
    """The outcome of checking one item. ``outcome`` None: the file went away meanwhile (the
    worker deleted it); it is not counted."""

    key: str
    file_id: UUID | None
    outcome: FixityOutcome | None
    findings: list[Finding] = field(default_factory=list)
    bytes_read: int = 0
    sidecar_checked: bool = False
    content_offline: bool = False
    checksum: str | None = None
    size: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AuditPolicy:
    """How hard the auditor tries before it speaks."""

    confirmations: int = 3
    """Re-reads of a mismatch before it is declared."""
    read_attempts: int = 4
    """Tries of one read when the storage fails (then: unreadable)."""


def sound_verdict(entry: CatalogueEntry) -> Verdict:
    """The verdict of a known file whose sidecar and data were read and are what ``entry``
    records."""
    return Verdict(
        entry.storage_path,
        entry.file_id,
        FixityOutcome.PASS,
        bytes_read=entry.file_size,
        sidecar_checked=True,
        checksum=entry.checksum,
        size=entry.file_size,
    )
