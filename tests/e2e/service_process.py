"""An ``artstore`` HTTP service as an operator runs it: a subprocess, its output in files."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
#: How long a stopping service may take: its graceful shutdown plus interpreter exit.
STOP_TIMEOUT_S = 30.0


@dataclass
class ServiceProcess:
    """One ``python -m artstore ...`` service process, its stdout and stderr captured to files."""

    name: str
    process: asyncio.subprocess.Process
    stdout_path: Path
    stderr_path: Path
    base_url: str

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Until ``/health/ready`` answers 200; fails at once if the process exits."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:

            async def ready() -> bool:
                if self.process.returncode is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.stderr}"
                    )
                try:
                    return (await http.get("/health/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, timeout, interval=0.1, message=f"{self.name} ready")

    async def terminate(self) -> int:
        """SIGTERM, then wait (bounded) for the exit status."""
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT_S):
            return await self.process.wait()


@dataclass
class ServiceLauncher:
    """Starts ``python -m artstore <args>`` processes; on exit kills any still running."""

    name: str
    args: list[str]
    base_url: str
    output_dir: Path
    started: list[ServiceProcess] = field(default_factory=list)

    async def start(self, env: Mapping[str, str]) -> ServiceProcess:
        """One more process (outputs numbered by start), not waited for."""
        n = len(self.started) + 1
        stdout_path = self.output_dir / f"{self.name}-{n}.stdout"
        stderr_path = self.output_dir / f"{self.name}-{n}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "artstore", *self.args),
                cwd=REPO,
                env=dict(env),
                stdout=out,
                stderr=err,
            )
        service = ServiceProcess(self.name, process, stdout_path, stderr_path, self.base_url)
        self.started.append(service)
        return service

    async def __aenter__(self) -> ServiceLauncher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for service in self.started:
            if service.process.returncode is None:
                service.process.kill()
                await service.process.wait()
