"""Run a set of services as child processes: restart a crashed one with backoff, stop them all.

The restart decision (:class:`RestartPolicy`, :class:`CrashHistory`) is pure and unit-tested;
:class:`Supervisor` applies it to real processes with asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How long to wait before restarting a child that exited on its own.

    The delay doubles with each consecutive crash, up to ``max_delay_s``; a child that ran for
    ``stable_after_s`` before crashing counts as healthy again and restarts after
    ``initial_delay_s``. A crash loop therefore costs little CPU, a rare crash little time.
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    factor: float = 2.0
    stable_after_s: float = 30.0

    def delay(self, consecutive_crashes: int) -> float:
        """Seconds to wait after the ``consecutive_crashes``-th crash in a row (1-based)."""
        if consecutive_crashes < 1:
            return 0.0
        return float(
            min(self.max_delay_s, self.initial_delay_s * self.factor ** (consecutive_crashes - 1))
        )


@dataclass(slots=True)
class CrashHistory:
    """One child's crashes so far: what the policy needs to pick the next delay."""

    consecutive: int = 0
    total: int = 0

    def crashed(self, *, ran_for_s: float, policy: RestartPolicy) -> float:
        """Record a crash after ``ran_for_s`` seconds of running; return the restart delay."""
        if ran_for_s >= policy.stable_after_s:
            self.consecutive = 0
        self.consecutive += 1
        self.total += 1
        return policy.delay(self.consecutive)


#: Sees each line a child writes (stdout and stderr together); returns what goes to its log
#: file, or None to keep the line out of the log (a secret shown once, for example).
LineHook = Callable[[str], str | None]


@dataclass(frozen=True)
class ChildSpec:
    """One service to run: its command, environment, log file and readiness URL."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str | None = None
    on_line: LineHook | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    history: CrashHistory = field(default_factory=CrashHistory)
    task: asyncio.Task[None] | None = None


class StartupFailed(Exception):
    """The services did not all become ready in time; names which and where their logs are."""


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # Each child has its own session, so a terminal's Ctrl-C reaches only the supervisor, which
    # stops the children in order. If the supervisor itself is killed, the kernel sends the
    # child SIGTERM, so no service outlives it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts each child, restarts it with backoff when it exits on its own, stops them all.

    ``report`` receives one line for each thing an operator should know (crash, restart).
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        policy: RestartPolicy | None = None,
        report: Callable[[str], None] = print,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._report = report
        self._children = {spec.name: _Child(spec) for spec in specs}
        self._stopping = asyncio.Event()

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every child; each is watched (and restarted) by its own task."""
        for child in self._children.values():
            child.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            await self._spawn(child)
            child.task = asyncio.create_task(self._watch(child), name=f"watch-{child.spec.name}")

    async def _spawn(self, child: _Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.spec.argv,
            env=dict(child.spec.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()

    async def _watch(self, child: _Child) -> None:
        while True:
            process = child.process
            assert process is not None
            await self._copy_output(child, process)
            code = await process.wait()
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - child.started_at
            delay = child.history.crashed(ran_for_s=ran_for, policy=self.policy)
            self._report(
                f"{child.spec.name} exited with {_describe_exit(code)} after {ran_for:.1f} s; "
                f"restarting in {delay:.1f} s (restart {child.history.total}, "
                f"log: {child.spec.log_path})"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            await self._spawn(child)
            assert child.process is not None
            self._report(f"{child.spec.name} restarted (pid {child.process.pid})")

    async def _copy_output(self, child: _Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        with child.spec.log_path.open("ab") as log:
            while True:
                try:
                    raw = await process.stdout.readline()
                except ValueError:  # a line longer than the stream limit: take what is there
                    raw = await process.stdout.read(64 * 1024)
                if not raw:
                    return
                line = raw.decode("utf-8", "replace")
                if child.spec.on_line is not None:
                    kept = child.spec.on_line(line.rstrip("\n"))
                    if kept is None:
                        continue
                    line = kept + "\n"
                log.write(line.encode())
                log.flush()

    # -- readiness -----------------------------------------------------------------------------

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Poll every health URL until each answers 200; StartupFailed after ``timeout_s``."""
        pending = {c.spec.name: c for c in self._children.values() if c.spec.health_url}
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as http:
            while pending:
                for name, child in list(pending.items()):
                    if await _answers(http, child.spec.health_url):
                        del pending[name]
                if not pending:
                    return
                if time.monotonic() >= deadline:
                    logs = ", ".join(f"{n} ({c.spec.log_path})" for n, c in pending.items())
                    raise StartupFailed(f"not ready after {timeout_s:.0f} s: {logs}")
                await asyncio.sleep(0.2)

    # -- stopping ------------------------------------------------------------------------------

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM every child, wait up to ``grace_s``, then SIGKILL whatever is left."""
        self._stopping.set()
        running = [
            c.process
            for c in self._children.values()
            if c.process is not None and c.process.returncode is None
        ]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=grace_s)
            for process in running:
                if process.returncode is None:
                    self._report(f"pid {process.pid} ignored SIGTERM for {grace_s:.0f} s: killed")
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signal.SIGKILL)
            if late:
                await asyncio.wait(late, timeout=5.0)
        tasks = [c.task for c in self._children.values() if c.task is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)

    # -- inspection ----------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        """Name -> pid of every child that runs now."""
        return {
            name: child.process.pid
            for name, child in self._children.items()
            if child.process is not None and _alive(child.process)
        }

    def restarts(self, name: str) -> int:
        """How many times the named child was restarted."""
        return self._children[name].history.total


def _alive(process: asyncio.subprocess.Process | None) -> bool:
    return process is not None and process.returncode is None


async def _answers(http: httpx.AsyncClient, url: str | None) -> bool:
    if url is None:
        return True
    try:
        return (await http.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
