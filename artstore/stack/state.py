"""Where the stack keeps its state (``state.json``, ``stack.env``, logs, data) and its lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from artstore.stack.env import StackEnv

STATE_FILE = "state.json"
ENV_FILE = "stack.env"
LOCK_FILE = ".lock"


def resolve_state_dir(state_dir: Path | None = None) -> Path:
    """``state_dir``, else ``$ARTSTORE_STACK_DIR``, else ``./.artstore/stack``; made absolute."""
    if state_dir is None:
        configured = os.environ.get("ARTSTORE_STACK_DIR")
        state_dir = Path(configured) if configured else Path.cwd() / ".artstore" / "stack"
    return state_dir.expanduser().resolve()


class ServiceRecord(BaseModel):
    """One service of the stack: where it answers and, when the stack started it, its process."""

    name: str
    url: str
    owned: bool = Field(description="True when the stack started it (and so may stop it).")
    pid: int | None = None
    program: str | None = Field(None, description="Executable name, to recognise the pid.")
    stop_signal: int = int(signal.SIGTERM)
    ports: dict[str, int] = Field(default_factory=dict)
    data_dir: str | None = None
    log: str | None = None
    detail: str = ""

    def details(self) -> dict[str, str]:
        """The ``key=value`` words of ``detail``."""
        pairs = (word.partition("=") for word in self.detail.split())
        return {key: value for key, sep, value in pairs if sep}


class StackState(BaseModel):
    """Everything ``state.json`` records."""

    version: int = 1
    kafka_storage: str | None = Field(None, description="Broker storage last asked for.")
    kafka_broker: str | None = Field(None, description="Broker (tansu, apache) last asked for.")
    services: dict[str, ServiceRecord] = Field(default_factory=dict)
    env: dict[str, str | bool] | None = None

    def stack_env(self) -> StackEnv | None:
        """The recorded connection details, if the stack came up completely."""
        return StackEnv.from_dict(self.env) if self.env else None


class StateStore:
    """Reads and writes the state files of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def env_path(self) -> Path:
        return self.root / ENV_FILE

    def load(self) -> StackState:
        """The recorded state, or an empty one."""
        try:
            return StackState.model_validate_json(self.state_path.read_text())
        except FileNotFoundError:
            return StackState()

    def save(self, state: StackState) -> None:
        """Write ``state.json`` (and ``stack.env`` once the stack is complete) atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.state_path, state.model_dump_json(indent=2) + "\n")
        env = state.stack_env()
        if env is not None:
            _write_atomically(self.env_path, env.env_file())

    def clear(self, state: StackState) -> None:
        """Forget the running stack (keeping only its preferences) and remove ``stack.env``."""
        self.env_path.unlink(missing_ok=True)
        _write_atomically(
            self.state_path,
            StackState(
                kafka_storage=state.kafka_storage, kafka_broker=state.kafka_broker
            ).model_dump_json(indent=2)
            + "\n",
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the state directory (across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
