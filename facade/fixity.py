"""Never served silently (SPEC §3 Fixity): a file whose last check failed is refused, and a
whole-file download is hashed as it is sent and cut short if the bytes are not the file's."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from events import FixityFailed, FixityFindingKind, FixityOutcome, PremisEvent
from facade.problems import Problem

log = logging.getLogger(__name__)

AGENT = "artstore-facade download"


class FixityRefused(Problem):
    """The file's last fixity check found it damaged: its bytes are not served."""

    status = 409
    title = "File failed its fixity check"


def refuse_if_failed(row: asyncpg.Record) -> None:
    """Raise :class:`FixityRefused` when the file's last fixity finding is a failure."""
    fixity = row["fixity"]
    if not fixity or fixity.get("status") != "failed":
        return
    failure = row["fixity_failure"] or {}
    kind = fixity.get("kind") or failure.get("kind") or "failed"
    raise FixityRefused(
        f"file {row['file_id']} on element {row['element_id']} failed its last fixity check "
        f"({kind}: {fixity.get('detail') or failure.get('detail') or 'see the finding'}), "
        "checked at " + str(fixity.get("checked_at")) + ". Its bytes are not served until the "
        "file is repaired and found sound again; an operator can restore it from a copy and "
        f"run `artstore fixity run --element {row['element_id']} --file {row['file_id']}`.",
        reason="fixity_failed",
        element_id=row["element_id"],
        finding={
            "kind": kind,
            "checked_at": fixity.get("checked_at"),
            "pass_id": fixity.get("pass_id"),
            "detail": fixity.get("detail"),
            "expected_checksum": failure.get("expected_checksum"),
            "observed_checksum": failure.get("observed_checksum"),
        },
    )


class ServedMismatch(Exception):
    """The bytes sent do not hash to the file's checksum: the response is aborted."""


Report = Callable[[FixityFailed], Awaitable[None]]


async def verified(
    chunks: AsyncIterator[bytes],
    *,
    row: Any,
    report: Report,
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` on, hashing them, holding the last one back until the whole content
    is known to be the file's: on a mismatch the stream ends with an error instead, so the
    client never receives a complete-looking wrong file."""
    digest = hashlib.sha256()
    size = 0
    held: bytes | None = None
    async for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if held is not None:
            yield held
        held = chunk
    observed = digest.hexdigest()
    if observed != row["checksum"] or size != row["file_size"]:
        await _report(row, observed, size, report)
        raise ServedMismatch(
            f"file {row['file_id']}: the element returned {size} bytes hashing to {observed}, "
            f"not {row['file_size']} bytes hashing to {row['checksum']}; the download was cut short"
        )
    if held is not None:
        yield held


async def _report(row: Any, observed: str, size: int, report: Report) -> None:
    now = datetime.now(UTC)
    kind = (
        FixityFindingKind.SIZE_MISMATCH
        if size != row["file_size"]
        else FixityFindingKind.CHECKSUM_MISMATCH
    )
    detail = (
        f"while downloading: {size} bytes hashing to {observed}, the file has "
        f"{row['file_size']} bytes hashing to {row['checksum']}"
    )
    finding = FixityFailed(
        element_id=row["element_id"],
        file_id=UUID(str(row["file_id"])),
        storage_path=row["storage_path"],
        kind=kind,
        expected_checksum=row["checksum"],
        observed_checksum=observed,
        expected_size=row["file_size"],
        observed_size=size,
        detail=detail,
        detected_at=now,
        premis=PremisEvent(
            event_date_time=now, agent=AGENT, outcome=FixityOutcome.FAIL, outcome_detail=detail
        ),
    )
    log.error("served bytes do not match the file", extra={"file_id": str(row["file_id"])})
    try:
        await report(finding)
    except Exception:
        log.exception("could not announce the finding")
