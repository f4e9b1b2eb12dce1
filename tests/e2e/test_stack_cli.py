"""``python -m artstore.stack`` as a developer runs it: up (twice at once), status, env, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from artstore.stack.errors import StackError
from artstore.stack.postgres_server import postgres_bindir
from artstore.stack.processes import is_running

pytestmark = [
    pytest.mark.embedded_broker,
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.s3,
    pytest.mark.redis,
]


def _stack(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "artstore.stack", *args],
        env=_environment(state_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _postgres_installed() -> bool:
    try:
        postgres_bindir()
    except StackError:
        return False
    return True


#: Start our own Redis (and PostgreSQL, where its binaries are installed) even though the
#: machine runs its own, to prove the fallback a machine without them depends on.
FORCE_OWN = ["redis", *(["postgres"] if _postgres_installed() else [])]


def _environment(state_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARTSTORE_")}
    env["ARTSTORE_STACK_DIR"] = str(state_dir)
    env["ARTSTORE_STACK_FORCE_OWN"] = ",".join(FORCE_OWN)
    return env


def test_cli_brings_up_reports_and_takes_down_its_own_services(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    # Two `up`s at once: the lock makes the second reuse what the first started.
    ups = [
        subprocess.Popen(
            [sys.executable, "-m", "artstore.stack", "up"],
            env=_environment(state_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=120) for process in ups]
        assert [process.returncode for process in ups] == [0, 0], outputs

        status = _stack(state_dir, "status", "--json")
        assert status.returncode == 0, status.stderr
        services = {item["name"]: item for item in json.loads(status.stdout)}
        assert set(services) == {"s3", "postgres", "redis", "kafka"}
        assert all(item["up"] for item in services.values())
        assert not services["redis"]["url"].endswith(":6379/0")
        owned = {name: item["pid"] for name, item in services.items() if item["owned"]}
        assert set(owned) == {"s3", "kafka", *FORCE_OWN}

        env = _stack(state_dir, "env")
        assert env.returncode == 0, env.stderr
        variables = dict(line.split("=", 1) for line in env.stdout.splitlines())
        assert variables["ARTSTORE_KAFKA_BOOTSTRAP"] == services["kafka"]["url"]
        assert variables["ARTSTORE_REDIS_URL"] == services["redis"]["url"]
        assert (state_dir / "stack.env").read_text() == env.stdout
        recorded = json.loads((state_dir / "state.json").read_text())["services"]
        s3_ports = recorded["s3"]["ports"]
        data_dirs = [Path(item["data_dir"]) for item in recorded.values() if item["data_dir"]]
    finally:
        down = _stack(state_dir, "down", "--purge")
    assert down.returncode == 0, down.stderr
    assert not [name for name, pid in owned.items() if is_running(pid)]
    leftovers = [
        sock
        for port in s3_ports.values()
        for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock")
    ]
    assert leftovers == []
    assert _stack(state_dir, "status").returncode == 3
    assert [path for path in data_dirs if path.exists()] == []
