"""Why accepted uploads have no outcome in the index: where each one is on its way.

When a trial's uploads don't all get an outcome in time, the failure says, for each upload
without one, how far it got: its command in the upload topic (or not there at all), the upload
group's committed offset past it or not, its claim, a copy on an element, its fact on the files
topic (or in the dead letters), and the projection's position past that fact or not; then
counts by where they stopped, and the tails of the workers', the broker's and the projector's
logs. Nothing here decides a trial; it only explains one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from aiokafka.admin import AIOKafkaAdminClient

from artstore.logging import JsonFormatter
from artstore.settings import Settings
from events import FileStored, Topic, UploadRejected, UploadRequested, decode_record
from events.dead_letters import SOURCE_TOPIC
from storage_workers.groups import storage_group
from tests.helpers import consumer_from_beginning
from tests.integration.query.support import fetch

Place = tuple[int, int]
"""(partition, offset) of a record in its topic."""


@dataclass
class Whereabouts:
    """What the broker, the database and the elements hold of one upload."""

    file_id: UUID
    command: Place | None = None
    committed: int | None = None
    """The upload group's committed offset of the command's partition."""
    claim: str | None = None
    copies: list[str] = field(default_factory=list)
    facts: list[tuple[str, Place]] = field(default_factory=list)
    """(kind, place on the files topic or the DLQ): stored, rejected, dead-lettered."""
    status: str | None = None
    indexed_on: str | None = None

    def stage(self, positions: dict[tuple[str, int], int], names: Any) -> str:
        """Where the upload stopped, in a few words."""
        if self.command is None:
            return "command not in the upload topic"
        if not self.facts:
            if self.committed is not None and self.committed > self.command[1]:
                return "committed past without a fact"
            if self.copies:
                return "on an element, no fact, not committed"
            return "in the topic, not committed, no copy"
        files = names.name(Topic.FILES)
        dlq = names.name(Topic.DLQ)
        for kind, (partition, offset) in self.facts:
            topic = dlq if kind == "dead-lettered" else files
            if positions.get((topic, partition), 0) > offset:
                return f"fact ({kind}) projected without an index row"
        return "fact not projected yet"

    def line(self, positions: dict[tuple[str, int], int], names: Any) -> str:
        def place(p: Place | None) -> str:
            return "-" if p is None else f"[{p[0]}]@{p[1]}"

        facts = ", ".join(f"{kind} {place(p)}" for kind, p in self.facts) or "none"
        return (
            f"{self.file_id}: {self.stage(positions, names)}; command {place(self.command)} "
            f"(group committed {self.committed}), claim {self.claim}, copies {self.copies}, "
            f"facts {facts}, index status {self.status} on {self.indexed_on}"
        )


async def _records(settings: Settings, topic: Topic) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now (bounded in time)."""
    consumer = await consumer_from_beginning(settings, [topic])
    found: list[Any] = []
    try:
        partitions = list(consumer.assignment())
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(60):
            while True:
                at = {tp: await consumer.position(tp) for tp in partitions}
                if all(at[tp] >= ends[tp] for tp in partitions):
                    break
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(batch)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return found


async def _committed(settings: Settings, group: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def _decoded(settings: Settings, record: Any, topic: Topic) -> Any:
    try:
        return decode_record(record, max_bytes=settings.max_message_bytes, topic=topic).data
    except Exception:
        return None


async def explain(
    settings: Settings,
    missing: Sequence[UUID],
    copies: dict[UUID, list[str]],
    logs: Iterable[Path],
    *,
    element_id: str,
) -> str:
    """Where each of ``missing`` is, counts by stage, and the logs' tails."""
    names = settings.topic_names()
    wanted = {file_id: Whereabouts(file_id, copies=copies.get(file_id, [])) for file_id in missing}
    lines: list[str] = []
    try:
        await _locate(settings, wanted, element_id)
    except Exception as exc:  # a partial answer is still an answer
        lines.append(f"(could not look everywhere: {exc!r})")
    positions: dict[tuple[str, int], int] = {}
    with contextlib.suppress(Exception):
        for row in await fetch(
            settings.database_url, "SELECT topic, partition, next_offset FROM projection_offsets"
        ):
            positions[(row["topic"], row["partition"])] = row["next_offset"]
    stages = Counter(w.stage(positions, names) for w in wanted.values())
    lines.insert(0, f"{len(missing)} accepted upload(s) without an outcome in the index: {stages}")
    mine = {k: v for k, v in positions.items() if k[0].startswith(settings.topic_prefix + ".")}
    lines.append(f"projection positions: {dict(sorted(mine.items()))}")
    lines.extend(w.line(positions, names) for w in list(wanted.values())[:20])
    for path in logs:
        lines.append(f"--- last lines of {path.name} ---")
        lines.extend(tail(path, 40))
    return "\n".join(lines)


async def _locate(settings: Settings, wanted: dict[UUID, Whereabouts], element_id: str) -> None:
    for record in await _records(settings, Topic.UPLOADS_RW):
        data = _decoded(settings, record, Topic.UPLOADS_RW)
        if isinstance(data, UploadRequested) and data.file_id in wanted:
            wanted[data.file_id].command = (record.partition, record.offset)
    for record in await _records(settings, Topic.FILES):
        data = _decoded(settings, record, Topic.FILES)
        if isinstance(data, FileStored) and data.file.file_id in wanted:
            kind = f"stored on {data.file.element_id}"
            wanted[data.file.file_id].facts.append((kind, (record.partition, record.offset)))
        elif isinstance(data, UploadRejected) and data.file_id in wanted:
            kind = f"rejected {data.reason.value}"
            wanted[data.file_id].facts.append((kind, (record.partition, record.offset)))
    source = settings.topic_names().name(Topic.UPLOADS_RW)
    for record in await _records(settings, Topic.DLQ):
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
        if headers.get(SOURCE_TOPIC) != source:
            continue
        data = _decoded(settings, record, Topic.UPLOADS_RW)
        if isinstance(data, UploadRequested) and data.file_id in wanted:
            wanted[data.file_id].facts.append(("dead-lettered", (record.partition, record.offset)))
    group = storage_group(settings.topic_names(), element_id, Topic.UPLOADS_RW)
    committed = await _committed(settings, group)
    for w in wanted.values():
        if w.command is not None:
            w.committed = committed.get(w.command[0])
    ids = list(wanted)
    with contextlib.suppress(Exception):
        for row in await fetch(
            settings.database_url,
            "SELECT file_id, element_id, stored IS NOT NULL AS stored "
            "FROM storage_upload_claims WHERE file_id = ANY($1::uuid[])",
            ids,
        ):
            wanted[
                row["file_id"]
            ].claim = f"{row['element_id']} ({'stored' if row['stored'] else 'unfinished'})"
    for row in await fetch(
        settings.database_url,
        "SELECT u.file_id, u.status, f.element_id AS indexed_on "
        "FROM uploads u LEFT JOIN files f ON f.file_id = u.file_id "
        "WHERE u.file_id = ANY($1::uuid[])",
        ids,
    ):
        wanted[row["file_id"]].status = row["status"]
        wanted[row["file_id"]].indexed_on = row["indexed_on"]


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of ``path`` (each cut to 600 characters)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 200_000))
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return [f"(unreadable: {exc})"]
    return [line[:600] for line in text.splitlines()[-lines:]]


@contextlib.contextmanager
def projector_log(path: Path) -> Iterator[None]:
    """The projector's log lines (INFO and up, as JSON) to ``path`` while the block runs."""
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(JsonFormatter("projector", "trial"))
    logger = logging.getLogger("consumers")
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()
