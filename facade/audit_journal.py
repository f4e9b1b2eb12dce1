"""The facade's audit journal: its audit events on local disk until the broker has them.

One directory per facade instance (``<ARTSTORE_FACADE_AUDIT_JOURNAL_DIR>/<instance>``), held by
a lock so that two processes never share it. Events are appended to numbered segment files
(``00000001.journal``, ...), one line each: the CRC-32 of the record in hex, a space, the
encoded record as JSON, a newline. :meth:`AuditJournal.append` returns only after ``fsync``, so
an event the facade answered for survives the process dying, or the machine. A segment is
removed once the broker has acknowledged every event in it (see ``facade.audit_relay``); on start,
:meth:`AuditJournal.recover` reads back what is left, to be sent again. An event the broker took
just before a crash is then sent twice: audit events carry ids, and the projection keeps one
entry per id. A journal no running facade holds (an instance that is gone, a container that was
re-created under another name) is taken over by the next facade that starts beside it
(:func:`unheld_journals`).

A crash in the middle of an append leaves a line without its newline: that append never
returned, so its request was never answered, and recovery cuts it off. A line whose checksum
does not match (damage on disk) is skipped and logged.

Everything here is blocking file I/O; the relay calls it from a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from events import OutgoingRecord

log = logging.getLogger(__name__)

SUFFIX = ".journal"
LOCK = "journal.lock"


class JournalInUse(RuntimeError):
    """Another process holds the journal directory."""


@dataclass(frozen=True)
class Segment:
    """A segment file's number and the events read back from it."""

    number: int
    records: list[OutgoingRecord]


def encode_line(record: OutgoingRecord) -> bytes:
    """One journal line: CRC-32 of the JSON, a space, the JSON, a newline."""
    body = json.dumps(
        {
            "topic": record.topic,
            "key": base64.b64encode(record.key).decode("ascii"),
            "value": base64.b64encode(record.value).decode("ascii"),
            "headers": record.headers,
            "type": record.event_type,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_line(line: bytes) -> OutgoingRecord | None:
    """The record of a journal line (without its newline), or None if the line is damaged."""
    crc, _, body = line.partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        fields = json.loads(body)
        return OutgoingRecord(
            topic=fields["topic"],
            key=base64.b64decode(fields["key"], validate=True),
            value=base64.b64decode(fields["value"], validate=True),
            headers=dict(fields["headers"]),
            event_type=fields["type"],
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AuditJournal:
    """Append-only, fsync'd segments of encoded audit events in one locked directory.

    ``segment_bytes``: an active segment at least this large is closed and the next append
    starts a new one, so segments whose events were all acknowledged can be removed while new
    events keep arriving.
    """

    def __init__(self, directory: Path, *, segment_bytes: int = 4 * 1024 * 1024) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._lock_fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalInUse(
                f"the audit journal {directory} is held by another process; give each facade "
                "instance its own name (ARTSTORE_FACADE_INSTANCE)"
            ) from None
        self._next = max(self.segment_numbers(), default=0) + 1
        self._active: int | None = None
        self._fd: int | None = None
        self._size = 0

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:08d}{SUFFIX}"

    def segment_numbers(self) -> list[int]:
        """Numbers of the segment files on disk, oldest first."""
        return sorted(int(p.stem) for p in self.directory.glob(f"*{SUFFIX}") if p.stem.isdigit())

    @property
    def active(self) -> int | None:
        """The segment appends go to, if one is open."""
        return self._active

    def recover(self) -> list[Segment]:
        """Every event left on disk, per segment, oldest first; cuts off a torn last line."""
        found = []
        for number in self.segment_numbers():
            path = self._path(number)
            data = path.read_bytes()
            complete, _, torn = data.rpartition(b"\n")
            if torn:
                # The append that wrote this never returned: its request was never answered.
                log.warning(
                    "audit journal: cutting off an unfinished line",
                    extra={"segment": path.name, "bytes": len(torn)},
                )
                with path.open("r+b") as f:
                    f.truncate(len(data) - len(torn))
                    os.fsync(f.fileno())
            records = []
            for line in complete.split(b"\n") if complete else []:
                record = decode_line(line)
                if record is None:
                    log.error(
                        "audit journal: a damaged line is skipped", extra={"segment": path.name}
                    )
                    continue
                records.append(record)
            found.append(Segment(number, records))
        return found

    def append(self, records: Sequence[OutgoingRecord]) -> int:
        """Write ``records`` and fsync; return the segment they are in.

        On a write or fsync error the segment is cut back to where it was and closed, and the
        error raised: none of ``records`` counts as recorded.
        """
        if self._fd is not None and self._size >= self._segment_bytes:
            self.seal()
        if self._fd is None:
            self._open_next()
        assert self._fd is not None
        assert self._active is not None
        data = b"".join(encode_line(r) for r in records)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            self.seal()
            raise
        self._size += len(data)
        return self._active

    def _open_next(self) -> None:
        number = self._next
        self._fd = os.open(
            self._path(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600
        )
        # The new file's name must survive a crash too, or its events would be lost with it.
        _fsync_directory(self.directory)
        self._next += 1
        self._active = number
        self._size = 0

    def seal(self) -> int | None:
        """Close the active segment (the next append starts a new one); return its number."""
        sealed = self._active
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._active = None
        return sealed

    def remove(self, numbers: Iterable[int]) -> None:
        """Delete segments every event of which the broker has acknowledged."""
        for number in numbers:
            if number == self._active:
                self.seal()
            with contextlib.suppress(FileNotFoundError):
                self._path(number).unlink()
        _fsync_directory(self.directory)

    def discard(self) -> None:
        """Delete this emptied journal of an instance that is gone, directory and all."""
        self.seal()
        with contextlib.suppress(OSError):
            for leftover in self.directory.iterdir():
                leftover.unlink()
            self.directory.rmdir()
        self.close()

    def close(self) -> None:
        """Close the active segment and release the directory (once; later calls do nothing)."""
        self.seal()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


def unheld_journals(root: Path, own: Path) -> list[AuditJournal]:
    """The journals under ``root`` besides ``own`` that no running facade holds, now held by
    the caller: those with events left, to relay; empty ones are deleted."""
    found = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and p != own):
        try:
            journal = AuditJournal(directory)
        except JournalInUse:
            continue  # a running facade relays it
        if journal.segment_numbers():
            found.append(journal)
        else:
            journal.discard()
    return found
