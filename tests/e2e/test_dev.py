"""``artstore dev`` and ``artstore demo`` as a newcomer runs them: processes, signals, a restart.

The dev deployment keeps its own stack (Kafka, SeaweedFS) in its data dir, so it does not touch
the test session's; it shares the machine's PostgreSQL and Redis under its own database and key
prefix, both removed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from artstore.stack import StackEnv, maintenance_dsn, stop_stack
from producers import ArtStoreClient, load_client_settings
from tests.dev_ports import free_dev_ports
from tests.helpers import poll_until

pytestmark = [
    pytest.mark.embedded_broker,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
]

REPO = Path(__file__).resolve().parents[2]
ARTSTORE = [sys.executable, "-m", "artstore"]
#: Ctrl-C must stop every service and the stack within seconds.
STOP_BOUND_S = 30.0
READY_BOUND_S = 150.0


def children_of(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Dev:
    """One ``artstore dev`` process with its output in a file."""

    process: subprocess.Popen[bytes]
    output: Path
    port_base: int

    @property
    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def health_urls(self) -> list[str]:
        base = self.port_base
        return [
            f"http://127.0.0.1:{base}/health/ready",
            f"http://127.0.0.1:{base + 1}/health/ready",
            *(f"http://127.0.0.1:{base + i}/health/ready" for i in (3, 4, 5)),
        ]

    def wait_ready(self) -> float:
        started = time.monotonic()

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"artstore dev exited {self.process.returncode}:\n{self.text}")
            return all(answers(url) for url in self.health_urls())

        poll_until(ready, READY_BOUND_S, "every service answering its health check")
        poll_until(lambda: "Ctrl-C stops everything" in self.text, 15, "the banner")
        return time.monotonic() - started

    def service_pids(self) -> dict[str, int]:
        found = {}
        for pid in children_of(self.process.pid):
            line = cmdline(pid)
            for name in ("auth serve", "query facade", "query projector", "storage worker"):
                if name in line:
                    found.setdefault(name, pid)
        return found

    def interrupt(self) -> float:
        """SIGINT (Ctrl-C); the seconds until the process exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=STOP_BOUND_S + 30)
        return time.monotonic() - started


@pytest.fixture
def dev_run(tmp_path: Path, stack: StackEnv) -> Iterator[tuple[Path, int, list[Dev]]]:
    """A data dir and port range for ``artstore dev``; whatever it left is cleaned up after."""
    data_dir = tmp_path / "artstore-data"
    port_base = free_dev_ports()
    runs: list[Dev] = []
    yield data_dir, port_base, runs
    for run in runs:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGINT)
            try:
                run.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
    stop_stack(data_dir / "stack")
    instance = json.loads((data_dir / "dev.json").read_text()) if data_dir.exists() else None
    if instance:
        asyncio.run(_drop_database(stack.database_url, instance["database"]))
        client = redis.Redis.from_url(stack.redis_url)
        keys = list(client.scan_iter(f"artstore:dev-{instance['instance_id']}:*"))
        if keys:
            client.delete(*keys)
        client.close()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(maintenance_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start_dev(data_dir: Path, port_base: int, runs: list[Dev], name: str) -> Dev:
    output = data_dir.parent / f"{name}.out"
    env = {**os.environ, "COLUMNS": "200", "ARTSTORE_LOG_LEVEL": "INFO"}
    env.pop("ARTSTORE_ENV_FILE", None)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*ARTSTORE, "dev", "--data-dir", str(data_dir), "--port-base", str(port_base)],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    run = Dev(process, output, port_base)
    runs.append(run)
    return run


def test_dev_runs_the_demo_stops_on_ctrl_c_and_keeps_everything_across_a_restart(
    dev_run: tuple[Path, int, list[Dev]],
) -> None:
    data_dir, port_base, runs = dev_run
    timings: dict[str, float] = {}

    dev = start_dev(data_dir, port_base, runs, "first")
    timings["cold start"] = dev.wait_ready()
    shown = re.search(r"client_id\s+(\S+)\s+client_secret\s+(\S+)", dev.text)
    assert shown, dev.text
    client_id, secret = shown.groups()
    env_file = data_dir / "artstore.env"
    assert (env_file.stat().st_mode & 0o077) == 0, "the file with the secret is private"
    assert secret in env_file.read_text()
    for log in (data_dir / "logs").glob("*.log"):
        assert secret not in log.read_text(errors="replace"), f"{log.name} holds the secret"
    assert "artstore upload" in dev.text

    started = time.monotonic()
    demo = subprocess.run(
        [*ARTSTORE, "demo", "--data-dir", str(data_dir), "--large-mb", "8", "--timeout", "60"],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    timings["demo"] = time.monotonic() - started
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "✗" not in demo.stdout
    assert demo.stdout.count("✓") >= 15, demo.stdout
    for step in ("Russian", "8 MiB", "refused", "replay"):
        assert step in demo.stdout, step

    # A crashed service comes back by itself, and the operator is told.
    before = dev.service_pids()
    assert len(before) == 4, before  # auth, facade, projector, one of the workers at least
    os.kill(before["query facade"], signal.SIGKILL)
    poll_until(
        lambda: dev.service_pids().get("query facade") not in (None, before["query facade"]),
        30,
        "a new facade process",
    )
    poll_until(lambda: answers(f"http://127.0.0.1:{port_base + 1}/health/ready"), 60, "facade")
    assert "facade exited with signal SIGKILL" in dev.text
    assert "facade restarted" in dev.text

    children = children_of(dev.process.pid)
    # auth, projector, facade, the webhook dispatcher and three workers
    assert len(children) == 7, [cmdline(p) for p in children]
    stack_pids = [
        record["pid"]
        for record in json.loads((data_dir / "stack" / "state.json").read_text())[
            "services"
        ].values()
        if record["owned"]
    ]
    assert stack_pids, "the dev stack runs its own broker and S3"
    timings["shutdown"] = dev.interrupt()
    assert dev.process.returncode == 0, dev.text
    assert timings["shutdown"] < STOP_BOUND_S, timings
    assert not [p for p in children if running(p)], "every service stopped"
    assert not [p for p in stack_pids if running(p)], "the stack stopped"

    again = start_dev(data_dir, port_base, runs, "second")
    timings["warm start"] = again.wait_ready()
    assert "client_secret" not in again.text, "the secret is shown on first start only"
    assert "shown at first start" in again.text
    assert secret not in again.text

    async def earlier_files() -> set[str]:
        settings = load_client_settings(env_file=env_file)
        async with ArtStoreClient(settings) as client:
            assert settings.client_id == client_id
            page = await client.search("report", tag="demo")
            return {item["original_filename"] for item in page.items}

    assert "quarterly-reports.txt" in asyncio.run(earlier_files())
    timings["second shutdown"] = again.interrupt()
    assert again.process.returncode == 0
    print("artstore dev timings (s):", {k: round(v, 1) for k, v in timings.items()})
