"""The supervisor with real child processes: readiness, restart after a kill, clean stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from artstore.dev import ChildSpec, RestartPolicy, Supervisor
from tests.helpers import wait_until

pytestmark = [pytest.mark.embedded_broker]

FAST = RestartPolicy(initial_delay_s=0.05, max_delay_s=0.2, stable_after_s=60.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_child(tmp_path: Path, name: str = "web") -> ChildSpec:
    port = free_port()
    return ChildSpec(
        name=name,
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        env=dict(os.environ),
        log_path=tmp_path / f"{name}.log",
        health_url=f"http://127.0.0.1:{port}/",
    )


def python_child(tmp_path: Path, name: str, code: str) -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=[sys.executable, "-c", code],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        log_path=tmp_path / f"{name}.log",
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"


async def test_a_killed_child_is_restarted_reported_and_ready_again(tmp_path: Path) -> None:
    reports: list[str] = []
    supervisor = Supervisor([web_child(tmp_path)], policy=FAST, report=reports.append)
    await supervisor.start()
    try:
        await supervisor.wait_ready(20)
        first = supervisor.pids()["web"]
        os.kill(first, signal.SIGKILL)
        await wait_until(
            lambda: supervisor.pids().get("web", first) != first, 20, message="a new web process"
        )
        await supervisor.wait_ready(20)
        assert supervisor.restarts("web") == 1
        assert any("web exited with signal SIGKILL" in r for r in reports), reports
        assert any(r.startswith("web restarted (pid ") for r in reports), reports
    finally:
        await supervisor.stop(5)
    assert supervisor.pids() == {}


async def test_a_crash_loop_backs_off_and_keeps_restarting(tmp_path: Path) -> None:
    reports: list[str] = []
    child = python_child(tmp_path, "crasher", "import sys; print('boom'); sys.exit(3)")
    policy = RestartPolicy(initial_delay_s=0.1, max_delay_s=0.4, stable_after_s=60.0)
    supervisor = Supervisor([child], policy=policy, report=reports.append)
    await supervisor.start()
    try:
        await wait_until(lambda: supervisor.restarts("crasher") >= 4, 20, message="4 restarts")
    finally:
        await supervisor.stop(5)
    assert "crasher exited with code 3" in reports[0]
    delays = [re.search(r"restarting in ([0-9.]+) s", r) for r in reports]
    assert [float(m[1]) for m in delays if m][:4] == [0.1, 0.2, 0.4, 0.4], reports
    assert (tmp_path / "crasher.log").read_text().count("boom") >= 4


async def test_stop_ends_every_child_and_kills_one_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = python_child(
        tmp_path,
        "stubborn",
        "import signal\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM')\n"
        "while True:\n"
        "    signal.pause()\n",
    )
    reports: list[str] = []
    supervisor = Supervisor([web_child(tmp_path), stubborn], policy=FAST, report=reports.append)
    await supervisor.start()
    await supervisor.wait_ready(20)
    await wait_until(
        lambda: "ignoring" in (tmp_path / "stubborn.log").read_text(), 20, message="handler set"
    )
    pids = supervisor.pids()
    started = asyncio.get_running_loop().time()
    await supervisor.stop(grace_s=1.0)
    took = asyncio.get_running_loop().time() - started
    assert took < 8
    assert all(gone(pid) for pid in pids.values())
    assert any("ignored SIGTERM" in r for r in reports)
    assert not any("restarting" in r for r in reports), "a stop is not a crash"


async def test_a_line_the_hook_withholds_never_reaches_the_log(tmp_path: Path) -> None:
    seen: list[str] = []

    def hook(line: str) -> str | None:
        seen.append(line)
        return None if "secret=" in line else line

    code = "print('hello'); print('secret=hunter2'); print('bye')"
    child = python_child(tmp_path, "talker", code)
    spec = ChildSpec(child.name, child.argv, child.env, child.log_path, on_line=hook)
    supervisor = Supervisor([spec], policy=RestartPolicy(initial_delay_s=60), report=lambda _: None)
    await supervisor.start()
    try:
        await wait_until(lambda: "bye" in seen, 20, message="all lines seen")
    finally:
        await supervisor.stop(5)
    log = (tmp_path / "talker.log").read_text()
    assert "hello" in log
    assert "bye" in log
    assert "hunter2" not in log
