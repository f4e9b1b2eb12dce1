"""Start programs detached with their output in a log file; check and stop them by pid."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from artstore.stack import launcher
from artstore.stack.errors import StackError


def launch(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start ``argv`` in its own session, detached from this process; return its pid."""
    spec = {
        "argv": [str(arg) for arg in argv],
        "log": str(log),
        "env": dict(env) if env is not None else None,
        "cwd": str(cwd) if cwd is not None else None,
        "user": user,
    }
    result = subprocess.run(
        [sys.executable, "-I", launcher.__file__],
        # The spec (with the environment) goes through stdin: argv strings have a size limit.
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"could not start {argv[0]}: {result.stderr.strip()}")
    return int(result.stdout.strip())


def is_running(pid: int | None, program: str | None = None) -> bool:
    """Whether ``pid`` is a live process (and, where ``/proc`` tells, runs ``program``)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another user (our PostgreSQL runs as 'postgres' or
        # 'nobody'): alive; /proc below tells whether it is the program we started.
        pass
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True
    try:
        stat = (proc / "stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return False
        # The kernel's short name of the executable: a recycled pid running something else
        # must not be taken for (or stopped as) our service.
        if program is not None:
            return (proc / "comm").read_text().strip() == program[:15]
    except (OSError, IndexError):
        return False
    return True


def stop(
    pid: int,
    *,
    program: str | None = None,
    sig: int = signal.SIGTERM,
    timeout: float = 15.0,
) -> None:
    """Send ``sig`` and wait; after ``timeout`` kill the process group with SIGKILL."""
    if not is_running(pid, program):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_gone(pid, program, timeout):
        return
    # The program ignored the polite request; everything in its session goes.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, program, 5.0):
        raise StackError(f"process {pid} ({program}) survived SIGKILL")


def _wait_gone(pid: int, program: str | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid, program):
        # A child of this very process must be reaped, or it stays a zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def log_tail(log: Path | str | None, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    if log is None:
        return ""
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
