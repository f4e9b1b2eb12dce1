"""``artstore dev``: the stack, the topics, every service under a supervisor, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

import asyncpg
import redis
from rich.console import Console

from artstore.dev.services import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEFAULT_PORT_BASE,
    ELEMENTS,
    INSTANCE_FILE,
    Credentials,
    Instance,
    Layout,
    Ports,
    Urls,
    child_environment,
    env_file_text,
    parse_bootstrap_line,
    plan_services,
    read_env_file,
    shared_env,
    write_private,
)
from artstore.dev.supervisor import ChildSpec, StartupFailed, Supervisor
from artstore.stack import (
    KafkaBroker,
    KafkaStorage,
    StackEnv,
    ensure_database,
    ensure_stack,
    maintenance_dsn,
    stop_stack,
)
from events import TopicNames, create_topics

#: How long the services may take to answer their health checks on start.
READY_TIMEOUT_S = 180.0
#: How long a service may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


class DevError(Exception):
    """Something the user must change before ``artstore dev`` can run (one sentence)."""


@dataclass(frozen=True)
class DevOptions:
    """What the user asked for on the command line."""

    data_dir: Path
    ephemeral: bool = False
    port_base: int | None = None


def prepare_instance(layout: Layout, options: DevOptions) -> tuple[Instance, bool]:
    """The deployment for this data dir (created on first start) and whether it is new."""
    instance = layout.load_instance()
    occupied = layout.root.is_dir() and any(layout.root.iterdir())
    if instance is None and options.ephemeral and occupied:
        raise DevError(
            f"{layout.root} is not empty and --ephemeral deletes its data dir when it stops; "
            "pass an empty or new --data-dir"
        )
    if instance is not None and not instance.ephemeral and options.ephemeral:
        raise DevError(
            f"{layout.root} holds a durable archive; run --ephemeral with another --data-dir"
        )
    if instance is not None and instance.ephemeral:
        # An ephemeral deployment keeps nothing: also not what a run that was killed left.
        _discard(layout, instance)
        instance = None
    if instance is None:
        port_base = options.port_base or DEFAULT_PORT_BASE
        instance = Instance.new(port_base=port_base, ephemeral=options.ephemeral)
        first_start = True
    else:
        first_start = False
        if options.port_base is not None and options.port_base != instance.port_base:
            instance = replace(instance, port_base=options.port_base)
    busy = [port for port in Ports(instance.port_base).all() if not _port_free(port)]
    if busy:
        raise DevError(
            f"port {busy[0]} is in use (artstore dev needs {instance.port_base}.."
            f"{instance.port_base + len(Ports(0).all()) - 1}); pass --port-base with a free range"
        )
    layout.save_instance(instance)
    return instance, first_start


def run_dev(options: DevOptions, console: Console) -> int:
    """Run everything until SIGINT or SIGTERM; return the exit status."""
    layout = Layout(options.data_dir.resolve())
    instance, first_start = prepare_instance(layout, options)
    storage = KafkaStorage.MEMORY if options.ephemeral else KafkaStorage.S3
    with _signals_interrupt():
        started = time.monotonic()
        try:
            with console.status("starting the stack (Kafka, S3, PostgreSQL, Redis)..."):
                # The embedded broker, whatever ARTSTORE_STACK_KAFKA says: pip is all it needs.
                stack = ensure_stack(
                    layout.stack_dir, kafka_storage=storage, kafka_broker=KafkaBroker.TANSU
                )
            session = _Session(layout, instance, stack, first_start, console, started)
            return asyncio.run(session.run())
        except KeyboardInterrupt:
            console.print("interrupted")
            return 130
        finally:
            with _signals_ignored(), console.status("stopping the stack..."):
                stop_stack(layout.stack_dir, purge=instance.ephemeral)
                if instance.ephemeral:
                    _discard(layout, instance)
            console.print("stopped")


class _Session:
    """One run of the services: database, topics, supervisor, banner, wait for a stop."""

    def __init__(
        self,
        layout: Layout,
        instance: Instance,
        stack: StackEnv,
        first_start: bool,
        console: Console,
        started: float,
    ) -> None:
        self.layout = layout
        self.instance = instance
        self.stack = stack
        self.first_start = first_start
        self.console = console
        self.started = started
        self.ports = Ports(instance.port_base)
        self.urls = Urls.of(self.ports)
        self.shared = shared_env(stack, instance, layout, self.ports)
        self.credentials = _saved_credentials(layout)
        self.credentials_shown = asyncio.Event()

    async def run(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ensure_database(self.shared["ARTSTORE_DATABASE_URL"])
        prefix = TopicNames(self.shared["ARTSTORE_TOPIC_PREFIX"])
        await create_topics(self.stack.kafka_bootstrap, prefix)
        self._write_env_file()
        supervisor = Supervisor(self._specs(), report=self._report)
        await supervisor.start()
        try:
            ready = asyncio.ensure_future(supervisor.wait_ready(READY_TIMEOUT_S))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                return 130
            stopped.cancel()
            try:
                ready.result()
            except StartupFailed as exc:
                self.console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
                return 1
            if self.first_start:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.credentials_shown.wait(), 10.0)
            self._banner(time.monotonic() - self.started)
            await stop.wait()
            return 0
        finally:
            self.console.print("stopping the services...")
            await supervisor.stop(STOP_GRACE_S)

    def _specs(self) -> list[ChildSpec]:
        specs = []
        for plan in plan_services(self.ports):
            specs.append(
                ChildSpec(
                    name=plan.name,
                    argv=plan.argv,
                    env=child_environment(os.environ, self.shared, plan),
                    log_path=self.layout.logs / f"{plan.name}.log",
                    health_url=plan.health_url,
                    on_line=self._auth_line if plan.name == "auth" else None,
                )
            )
        return specs

    def _auth_line(self, line: str) -> str | None:
        credentials = parse_bootstrap_line(line)
        if credentials is None:
            return line
        self.credentials = credentials
        self._write_env_file()
        self.credentials_shown.set()
        return (
            f"ArtStore bootstrap admin created: client_id={credentials.client_id} "
            f"client_secret=(shown once by artstore dev; kept in {self.layout.env_file})"
        )

    def _write_env_file(self) -> None:
        write_private(self.layout.env_file, env_file_text(self.shared, self.urls, self.credentials))

    def _report(self, message: str) -> None:
        self.console.print(f"[yellow]supervisor:[/yellow] {message}", highlight=False)

    def _banner(self, seconds: float) -> None:
        c = self.console
        kafka = "memory (--ephemeral)" if self.instance.ephemeral else "durable, on SeaweedFS S3"
        env_file = _relative(self.layout.env_file)
        c.print(f"\n[bold green]ArtStore is running[/bold green] (ready in {seconds:.1f} s)")
        c.print(f"  facade    {self.urls.facade}   (API docs: {self.urls.facade}/docs)")
        c.print(f"  console   {self.urls.facade}/console")
        c.print(f"  auth      {self.urls.auth}")
        elements = ", ".join(f"{e.element_id} ({e.mode}, {e.backend})" for e in ELEMENTS)
        c.print(f"  elements  {elements}: as first started; `artstore elements list` shows now")
        health = ", ".join(
            f"{e.element_id} :{self.ports.element_health(i)}" for i, e in enumerate(ELEMENTS)
        )
        c.print(f"  workers   /health/ready and /metrics on 127.0.0.1: {health}")
        c.print(f"  Kafka     {self.stack.kafka_bootstrap} ({kafka})")
        c.print(f"  data      {self.layout.root}  (logs in {_relative(self.layout.logs)}/)")
        if self.first_start and self.credentials is not None:
            c.print("\n[bold]Admin credentials[/bold] (shown once, now; copy them):")
            c.print(f"  client_id      {self.credentials.client_id}")
            c.print(f"  client_secret  {self.credentials.client_secret}", highlight=False)
            c.print(f"  (also kept, readable only by you, in {env_file})")
        elif self.credentials is not None:
            c.print(
                f"\nAdmin credentials were shown at first start; they are kept in {env_file} "
                f"({CLIENT_ID}, {CLIENT_SECRET})."
            )
        else:
            c.print(
                "\nNo admin credentials were captured (ARTSTORE_AUTH_BOOTSTRAP_ADMIN_SECRET "
                "chooses them); see the auth service's log."
            )
        c.print("\nTry it, in another shell:")
        for line in upload_command(self.layout.env_file):
            c.print(f"  {line}", highlight=False, soft_wrap=True)
        c.print(f"  artstore demo --data-dir {_relative(self.layout.root)}", highlight=False)
        c.print("\nCtrl-C stops everything.")


def upload_command(env_file: Path) -> list[str]:
    """Shell lines that upload a file to a running ``artstore dev``; the env file's path is
    absolute, so the lines work from any directory."""
    return [
        f"export ARTSTORE_ENV_FILE={shlex.quote(str(env_file.resolve()))}",
        "artstore upload README.md --tag first   # then: artstore search --tag first",
    ]


def _saved_credentials(layout: Layout) -> Credentials | None:
    if not layout.env_file.is_file():
        return None
    values = read_env_file(layout.env_file)
    client_id, secret = values.get(CLIENT_ID), values.get(CLIENT_SECRET)
    if client_id and secret:
        return Credentials(client_id, secret)
    return None


def purge(data_dir: Path) -> list[str]:
    """Remove everything ``artstore dev`` keeps for ``data_dir``: its stack, its database and
    Redis keys on the (possibly shared) servers, and the directory itself. Returns what was
    removed, in words; :class:`DevError` if it is running or holds no deployment."""
    layout = Layout(data_dir.resolve())
    instance = layout.load_instance()
    if instance is None:
        raise DevError(f"{layout.root} holds no artstore dev deployment ({INSTANCE_FILE} missing)")
    if any(not _port_free(port) for port in Ports(instance.port_base).all()):
        raise DevError(
            f"{layout.root}'s deployment seems to be running (its ports "
            f"{instance.port_base}.. are in use); stop `artstore dev` first"
        )
    removed = _discard(layout, instance)
    shutil.rmtree(layout.root, ignore_errors=True)
    removed.append(f"directory {layout.root}")
    return removed


def _discard(layout: Layout, instance: Instance) -> list[str]:
    """Remove everything a deployment kept: its stack, its database, its Redis keys and the
    contents of its data dir; return what was removed, in words."""
    removed = [f"stack service {name}" for name in stop_stack(layout.stack_dir, purge=True)]
    env = read_env_file(layout.env_file) if layout.env_file.is_file() else {}
    url = env.get("ARTSTORE_DATABASE_URL")
    if url:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            if asyncio.run(_drop_database(url, instance.database)):
                removed.append(f"database {instance.database}")
    redis_url = env.get("ARTSTORE_REDIS_URL")
    if redis_url:
        with contextlib.suppress(OSError, redis.RedisError):
            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(f"{instance.redis_prefix}*"))
            if keys:
                client.delete(*keys)
                removed.append(f"{len(keys)} Redis key(s) {instance.redis_prefix}*")
            client.close()
    if layout.root.is_dir():
        for child in layout.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    return removed


async def _drop_database(url: str, name: str) -> bool:
    """Drop the database; whether it existed."""
    conn = await asyncpg.connect(maintenance_dsn(url), timeout=10)
    try:
        existed = bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return existed
    finally:
        await conn.close()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the services do: connections of a previous run in TIME_WAIT do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM interrupts like Ctrl-C while the stack starts, so it is stopped again."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the shutdown short and leave services behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
