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
import gc
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from base.logging import JsonFormatter
from base.settings import Settings
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
        if self.status in ("stored", "rejected", "failed"):
            return f"{self.status} by the time it was looked at"
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
    """The group's committed offset per partition of the upload topic (asked without joining)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        name = settings.topic_names().name(Topic.UPLOADS_RW)
        found = {}
        for partition in consumer.partitions_for_topic(name) or ():
            offset = await consumer.committed(TopicPartition(name, partition))
            if offset is not None:
                found[partition] = offset
        return found
    finally:
        await consumer.stop()


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
    lines = [
        f"(could not read {what}: {exc!r})"
        for what, exc in await _locate(settings, wanted, element_id)
    ]
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
    lines.extend(consumers_here(settings.topic_prefix))
    for path in logs:
        lines.append(f"--- last lines of {path.name} ---")
        lines.extend(tail(path, 40))
    return "\n".join(lines)


async def _locate(
    settings: Settings, wanted: dict[UUID, Whereabouts], element_id: str
) -> list[tuple[str, Exception]]:
    """Fill in ``wanted`` from every place; what could not be read (a partial answer is still
    an answer)."""
    names = settings.topic_names()
    failed: list[tuple[str, Exception]] = []

    async def commands() -> None:
        for record in await _records(settings, Topic.UPLOADS_RW):
            data = _decoded(settings, record, Topic.UPLOADS_RW)
            if isinstance(data, UploadRequested) and data.file_id in wanted:
                wanted[data.file_id].command = (record.partition, record.offset)

    async def facts() -> None:
        for record in await _records(settings, Topic.FILES):
            data = _decoded(settings, record, Topic.FILES)
            if isinstance(data, FileStored) and data.file.file_id in wanted:
                kind = f"stored on {data.file.element_id}"
                wanted[data.file.file_id].facts.append((kind, (record.partition, record.offset)))
            elif isinstance(data, UploadRejected) and data.file_id in wanted:
                kind = f"rejected {data.reason.value}"
                wanted[data.file_id].facts.append((kind, (record.partition, record.offset)))

    async def dead_letters() -> None:
        source = names.name(Topic.UPLOADS_RW)
        for record in await _records(settings, Topic.DLQ):
            headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
            if headers.get(SOURCE_TOPIC) != source:
                continue
            data = _decoded(settings, record, Topic.UPLOADS_RW)
            if isinstance(data, UploadRequested) and data.file_id in wanted:
                place = (record.partition, record.offset)
                wanted[data.file_id].facts.append(("dead-lettered", place))

    async def committed() -> None:
        group = storage_group(names, element_id, Topic.UPLOADS_RW)
        offsets = await _committed(settings, group)
        for w in wanted.values():
            if w.command is not None:
                w.committed = offsets.get(w.command[0])

    async def claims() -> None:
        for row in await fetch(
            settings.database_url,
            "SELECT file_id, element_id, stored IS NOT NULL AS stored "
            "FROM storage_upload_claims WHERE file_id = ANY($1::uuid[])",
            list(wanted),
        ):
            state = "stored" if row["stored"] else "unfinished"
            wanted[row["file_id"]].claim = f"{row['element_id']} ({state})"

    async def index() -> None:
        for row in await fetch(
            settings.database_url,
            "SELECT u.file_id, u.status, f.element_id AS indexed_on "
            "FROM uploads u LEFT JOIN files f ON f.file_id = u.file_id "
            "WHERE u.file_id = ANY($1::uuid[])",
            list(wanted),
        ):
            wanted[row["file_id"]].status = row["status"]
            wanted[row["file_id"]].indexed_on = row["indexed_on"]

    for what, step in (
        ("the upload topic", commands),
        ("the files topic", facts),
        ("the dead letters", dead_letters),
        ("the upload group's offsets", committed),
        ("the upload claims", claims),
        ("the index", index),
    ):
        try:
            await step()
        except Exception as exc:
            failed.append((what, exc))
    return failed


def consumers_here(prefix: str) -> list[str]:
    """What each Kafka consumer of this process (the projector's) fetches for ``prefix``'s
    partitions that lag: its position, the broker's high watermark, whether it is paused or
    awaiting a reset, records buffered and not yet taken, and the partition's leader."""
    lines = []
    for consumer in (o for o in gc.get_objects() if isinstance(o, AIOKafkaConsumer)):
        try:
            group = consumer._group_id
            if consumer._closed or not group or not str(group).startswith(prefix):
                continue
            fetcher = consumer._fetcher
            assignment = consumer._subscription.subscription.assignment
            lines.append(
                f"consumer {group}: {len(assignment.tps)} partitions assigned, "
                f"buffered {sorted(str(tp) for tp in fetcher._records)}, "
                f"in flight to {sorted(fetcher._in_flight)}"
            )
            for tp in sorted(assignment.tps):
                state = assignment.state_value(tp)
                position = state.position if state.has_valid_position else None
                if position is not None and state.highwater in (None, position):
                    continue
                lines.append(
                    f"  {tp.topic}[{tp.partition}] position {position}, "
                    f"highwater {state.highwater}, paused {state.paused}, "
                    f"awaiting reset {state.awaiting_reset}, "
                    f"leader {consumer._client.cluster.leader_for_partition(tp)}"
                )
        except Exception as exc:  # private state: best effort
            lines.append(f"consumer state unreadable: {exc!r}")
    return lines


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
    """The projector's log lines and the Kafka client's (its group's joins and assignments;
    the trial's own clients log there too), INFO and up, as JSON, to ``path`` while the block
    runs."""
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(JsonFormatter("projector", "trial"))
    loggers = [logging.getLogger(name) for name in ("consumers", "aiokafka")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        handler.close()
