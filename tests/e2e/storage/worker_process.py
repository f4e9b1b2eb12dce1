"""A storage worker running as its own process, as an operator runs it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from base.settings import Settings
from tests.storage_support import TEST_SESSION_TIMEOUT_MS

T = TypeVar("T")


async def in_lanes(runs: Sequence[Callable[[], Awaitable[T]]], lanes: int) -> list[T]:
    """Every run, at most ``lanes`` at once (each starts its own worker processes); results
    in the order of ``runs``."""
    gate = asyncio.Semaphore(lanes)

    async def one(run: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await run()

    return list(await asyncio.gather(*(one(run) for run in runs)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """``artstore storage worker`` in a subprocess, configured through the environment."""

    def __init__(self, settings: Settings, jwks_file: Path, issuer: str, **config: object) -> None:
        self.env = {
            **os.environ,
            "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "ARTSTORE_DATABASE_URL": settings.database_url,
            "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
            "ARTSTORE_DATA_DIR": str(settings.data_dir),
            "ARTSTORE_S3_ENDPOINT": settings.s3_endpoint,
            "ARTSTORE_S3_ACCESS_KEY": settings.s3_access_key,
            "ARTSTORE_S3_SECRET_KEY": settings.s3_secret_key,
            "ARTSTORE_STORAGE_JWKS_FILE": str(jwks_file),
            "ARTSTORE_STORAGE_TOKEN_ISSUER": issuer,
            "ARTSTORE_STORAGE_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
            "ARTSTORE_STORAGE_HEARTBEAT_INTERVAL_S": "1",
            "ARTSTORE_LOG_LEVEL": "WARNING",
        }
        self.env.pop("ARTSTORE_CRASH_AT", None)
        for key, value in config.items():
            self.env[f"ARTSTORE_STORAGE_{key.upper()}"] = str(value)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = Path(settings.data_dir) / "worker.log"
        self._crash_at: str | None = None
        self._log_from = 0

    def start(self, crash_at: str | None = None) -> None:
        self._crash_at = crash_at
        self._log_from = self.log.stat().st_size if self.log.exists() else 0
        env = dict(self.env)
        self.port = free_port()
        env["ARTSTORE_STORAGE_HEALTH_PORT"] = str(self.port)
        if crash_at:
            env["ARTSTORE_CRASH_AT"] = crash_at
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from artstore.cli import main; main()",
                    "storage",
                    "worker",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _lost_its_port(self) -> bool:
        """Whether the worker exited because another process took its health port between
        :func:`free_port` and its bind (the machine is shared; nothing of ours to fix)."""
        with open(self.log, "rb") as log:
            log.seek(self._log_from)
            return b"address already in use" in log.read()

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None and self._lost_its_port():
            self.start(self._crash_at)  # it died before doing anything: start it again
            return False
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"worker exited; see {self.log}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/health/ready", timeout=1
            ) as r:
                return bool(json.loads(r.read())["status"] == "ready")
        except OSError:
            return False

    async def ready_async(self) -> bool:
        """:meth:`ready` without blocking the event loop."""
        return await asyncio.to_thread(self.ready)

    def consuming_uploads(self) -> bool:
        """Whether the worker says (on /metrics) it consumes its class's upload topic."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1) as r:
                text = r.read().decode()
        except OSError:
            return False
        return any(
            line.startswith("artstore_storage_consuming_uploads{") and line.endswith(" 1.0")
            for line in text.splitlines()
        )

    def exited(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
