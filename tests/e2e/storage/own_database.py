"""A PostgreSQL cluster of a trial's own, restartable on the same port (fast or crash)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path

from artstore.stack import postgres_server, processes
from artstore.stack.probes import LOOPBACK, free_ports
from artstore.stack.state import ServiceRecord
from tests.helpers import wait_until


class OwnDatabase:
    """``artstore.stack.postgres_server``'s cluster, in the trial's directory and on a port of
    its own: the trial can stop it without disturbing anything else, and its clients find it
    again on the same port when it is back."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (self.port,) = free_ports(1)
        self.record: ServiceRecord | None = None
        self.cluster: Path | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return (
            f"postgresql+asyncpg://{postgres_server.SUPERUSER}@{LOOPBACK}:{self.port}/"
            f"{postgres_server.DATABASE}"
        )

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = await asyncio.to_thread(postgres_server.start, self.directory, self.port)
        self.record = record
        self.cluster = Path(record.data_dir) if record.data_dir else None
        await wait_until(
            lambda: asyncio.to_thread(postgres_server.ready, record),
            120,
            interval=0.2,
            message="own PostgreSQL ready",
        )
        await asyncio.to_thread(postgres_server.ensure_database, self.url)

    async def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop the server: SIGINT is PostgreSQL's fast shutdown (clients are disconnected,
        the data is checkpointed); SIGKILL kills every server process at once, as a crash of
        the machine would, so the next start runs crash recovery from the WAL."""
        if self.record is None or self.record.pid is None:
            return
        pid = self.record.pid
        if sig == signal.SIGKILL:
            # The postmaster leads a session of its own: its backends go with it, or they would
            # keep the old shared memory and the next postmaster would refuse to start.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        await asyncio.to_thread(
            processes.stop, pid, program=postgres_server.PROGRAM, sig=sig, timeout=60
        )
        # Until init has reaped them, the dead server's processes still answer signals: a new
        # postmaster would take the old one's lock file for a live server's and refuse to start.
        await wait_until(lambda: _all_gone(pid), 60, message="the old PostgreSQL gone")
        self.record = None

    async def restart(self, sig: int) -> None:
        await self.stop(sig)
        await self.start()
        self.restarts += 1

    def remove(self) -> None:
        """Remove the (stopped) cluster's files."""
        if self.cluster is not None:
            shutil.rmtree(self.cluster, ignore_errors=True)


def _all_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
