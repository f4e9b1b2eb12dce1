"""The facade's audit journal and its relay, on a temporary directory, with an in-memory sender
standing in for the broker (the real broker: tests/e2e/test_facade_audit_journal.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from events import Envelope, OutgoingRecord, TopicNames, audit_event, encode
from facade.audit_journal import (
    AuditJournal,
    JournalInUse,
    decode_line,
    encode_line,
    unheld_journals,
)
from facade.audit_relay import AuditRelay

TOPICS = TopicNames(prefix="unit.artstore")


def downloaded(subject: str) -> Envelope[Any]:
    return audit_event("file.downloaded", subject=subject, source="tests", actor="sa_test")


class Broker:
    """Acknowledges what it is sent, or refuses everything while ``away``."""

    def __init__(self) -> None:
        self.away = False
        self.received: list[OutgoingRecord] = []

    def encode(self, envelope: Envelope[Any], token: str | None = None) -> OutgoingRecord:
        return encode(envelope, TOPICS, max_bytes=1_000_000)

    async def send_records(self, records: Sequence[OutgoingRecord]) -> object:
        if self.away:
            raise ConnectionError("broker away")
        self.received.extend(records)
        return None


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def ids(records: Sequence[OutgoingRecord]) -> list[str]:
    return [r.headers["ce_id"] for r in records]


def test_a_line_reads_back_as_the_record_it_was_and_damage_is_detected() -> None:
    record = Broker().encode(downloaded("f-1"))
    line = encode_line(record)
    assert line.endswith(b"\n")
    assert decode_line(line[:-1]) == record
    flipped = line[:20] + bytes([line[20] ^ 1]) + line[21:-1]
    assert decode_line(flipped) is None
    assert decode_line(b"not a line") is None


def test_recovery_keeps_whole_lines_cuts_a_torn_tail_and_skips_damage(tmp_path: Path) -> None:
    broker = Broker()
    journal = AuditJournal(tmp_path)
    records = [broker.encode(downloaded(f"f-{n}")) for n in range(3)]
    segment = journal.append(records[:2])
    journal.append(records[2:])
    journal.close()
    path = tmp_path / f"{segment:08d}.journal"
    lines = path.read_bytes().split(b"\n")
    damaged = lines[1][:-3] + b"xyz"
    # A damaged middle line, and an append that died half-way (never acknowledged).
    path.write_bytes(b"\n".join([lines[0], damaged, lines[2], b""]) + b'0123abcd {"to')

    reopened = AuditJournal(tmp_path)
    (recovered,) = reopened.recover()
    assert recovered.number == segment
    assert ids(recovered.records) == ids([records[0], records[2]])
    assert path.read_bytes().endswith(b"\n")
    reopened.close()


def test_a_second_process_cannot_share_the_journal(tmp_path: Path) -> None:
    journal = AuditJournal(tmp_path)
    with pytest.raises(JournalInUse, match="ARTSTORE_FACADE_INSTANCE"):
        AuditJournal(tmp_path)
    journal.close()
    AuditJournal(tmp_path).close()


async def test_a_segment_is_removed_only_once_the_broker_has_every_event(tmp_path: Path) -> None:
    broker = Broker()
    broker.away = True
    relay = AuditRelay(AuditJournal(tmp_path), broker)
    relay.resume()
    assert all(await asyncio.gather(*(relay.record(downloaded(f"f-{n}")) for n in range(5))))
    with pytest.raises(ConnectionError):
        await relay.flush_once()
    assert relay.pending == 5
    assert segments(tmp_path)

    broker.away = False
    assert await relay.flush_once() == 5
    assert relay.pending == 0
    assert not segments(tmp_path)
    assert len(broker.received) == 5
    await relay.close()


async def test_what_a_dead_facade_left_is_sent_by_the_next_one(tmp_path: Path) -> None:
    broker = Broker()
    broker.away = True
    first = AuditJournal(tmp_path)
    relay = AuditRelay(first, broker)
    relay.resume()
    events = [downloaded(f"f-{n}") for n in range(4)]
    for event in events:
        assert await relay.record(event)
    first.close()  # the process dies: nothing was sent, nothing is drained

    broker.away = False
    again = AuditRelay(AuditJournal(tmp_path), broker)
    again.resume()
    assert again.pending == 4
    while await again.flush_once():
        pass
    assert ids(broker.received) == [e.id for e in events]
    assert not segments(tmp_path)
    await again.close()


async def test_a_full_journal_records_nothing_more(tmp_path: Path) -> None:
    broker = Broker()
    broker.away = True
    relay = AuditRelay(AuditJournal(tmp_path), broker, capacity=2)
    relay.resume()
    assert await relay.record(downloaded("a"))
    assert await relay.record(downloaded("b"))
    assert not relay.has_room()
    assert not await relay.record(downloaded("c"))
    assert relay.pending == 2
    await relay.close()


async def test_events_keep_arriving_while_old_segments_are_emptied(tmp_path: Path) -> None:
    broker = Broker()
    relay = AuditRelay(AuditJournal(tmp_path, segment_bytes=1), broker, batch_size=2)
    relay.resume()
    for n in range(5):
        assert await relay.record(downloaded(f"f-{n}"))
    # Every append after the first found its segment full and started a new one.
    assert len(segments(tmp_path)) == 5
    assert await relay.flush_once() == 2
    assert len(segments(tmp_path)) == 3
    while await relay.flush_once():
        pass
    assert not segments(tmp_path)
    assert len(broker.received) == 5
    await relay.close()


async def test_a_journal_nobody_holds_is_relayed_by_a_facade_starting_beside_it(
    tmp_path: Path,
) -> None:
    broker = Broker()
    running = AuditJournal(tmp_path / "facade-b")  # a live instance: not taken over
    gone_journal = AuditJournal(tmp_path / "facade-a")
    gone = AuditRelay(gone_journal, broker)
    gone.resume()
    broker.away = True
    left = [downloaded(f"f-{n}") for n in range(3)]
    for event in left:
        assert await gone.record(event)
    await gone.close()
    gone_journal.close()  # its process is gone, and its lock with it
    AuditJournal(tmp_path / "emptied").close()

    broker.away = False
    own = AuditJournal(tmp_path / "facade-c")
    adopted = unheld_journals(tmp_path, own.directory)
    assert [j.directory.name for j in adopted] == ["facade-a"]
    assert not (tmp_path / "emptied").exists()
    relay = AuditRelay(own, broker)
    relay.resume(adopted)
    assert relay.pending == 3
    while await relay.flush_once():
        pass
    assert ids(broker.received) == [e.id for e in left]
    assert not (tmp_path / "facade-a").exists()
    assert (tmp_path / "facade-b").exists()
    await relay.close()
    running.close()
    own.close()
