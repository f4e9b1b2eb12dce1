"""What ``artstore dev`` runs: where its data lives, which ports, and each service's command.

Pure except for reading and writing the instance file; the supervisor runs what this describes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from artstore.stack import StackEnv, with_database

DEFAULT_DATA_DIR = Path("artstore-data")
DEFAULT_PORT_BASE = 8080
INSTANCE_FILE = "dev.json"
GB = 1000**3
#: The SDK's (and so the client commands') names for where to connect and who to be.
CLIENT_FACADE_URL = "ARTSTORE_CLIENT_FACADE_URL"
CLIENT_AUTH_URL = "ARTSTORE_CLIENT_AUTH_URL"
CLIENT_ID = "ARTSTORE_CLIENT_CLIENT_ID"
CLIENT_SECRET = "ARTSTORE_CLIENT_CLIENT_SECRET"
#: Each element's size on one machine (the disk's free space still caps it).
DEV_CAPACITY_BYTES = 50 * GB
ENV_FILE = "artstore.env"


def _new_notifications_key() -> str:
    return f"k1:{base64.b64encode(secrets.token_bytes(32)).decode('ascii')}"


BOOTSTRAP_LINE = re.compile(
    r"ArtStore bootstrap admin created: client_id=(?P<client_id>\S+) client_secret=(?P<secret>\S+)"
)


@dataclass(frozen=True, slots=True)
class Element:
    """A storage element ``artstore dev`` runs: one worker process each."""

    element_id: str
    mode: str
    backend: str
    priority: int


#: One local edit element, two rw elements (local first, then S3): SPEC §7 plus one on S3.
ELEMENTS = (
    Element("se-edit", "edit", "local", 0),
    Element("se-rw", "rw", "local", 0),
    Element("se-s3", "rw", "s3", 1),
)


RESTORE_ELEMENT = next(e.element_id for e in ELEMENTS if e.mode == "edit")
"""Where restores of archived files are copied to."""


@dataclass(frozen=True, slots=True)
class Ports:
    """Consecutive loopback ports from a base: auth, facade, projector metrics, then elements."""

    base: int

    @property
    def auth(self) -> int:
        return self.base

    @property
    def facade(self) -> int:
        return self.base + 1

    @property
    def projector_metrics(self) -> int:
        return self.base + 2

    def element_health(self, index: int) -> int:
        """The health port of the ``index``-th element of :data:`ELEMENTS`."""
        return self.base + 3 + index

    @property
    def notifications_metrics(self) -> int:
        """The webhook dispatcher's health and metrics, after the elements'."""
        return self.base + 3 + len(ELEMENTS)

    def all(self) -> list[int]:
        """Every port the services listen on."""
        return [
            self.auth,
            self.facade,
            self.projector_metrics,
            *(self.element_health(i) for i in range(len(ELEMENTS))),
            self.notifications_metrics,
        ]


@dataclass(frozen=True, slots=True)
class Instance:
    """What identifies one data dir's deployment across restarts (kept in ``dev.json``)."""

    instance_id: str
    database: str
    port_base: int
    ephemeral: bool = False

    @classmethod
    def new(cls, *, port_base: int, ephemeral: bool) -> Instance:
        """A fresh deployment: its own database and Redis key prefix on shared servers."""
        instance_id = secrets.token_hex(4)
        return cls(instance_id, f"artstore_dev_{instance_id}", port_base, ephemeral)

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key this deployment owns (the server may be shared)."""
        return f"artstore:dev-{self.instance_id}:"


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything ``artstore dev`` keeps, under one data directory."""

    root: Path

    @property
    def stack_dir(self) -> Path:
        return self.root / "stack"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def instance_file(self) -> Path:
        return self.root / INSTANCE_FILE

    @property
    def env_file(self) -> Path:
        """Settings (and, once captured, the admin credentials) for other ``artstore`` commands."""
        return self.root / ENV_FILE

    @property
    def notifications_key_file(self) -> Path:
        """The key that seals this deployment's webhook secrets (readable only by you)."""
        return self.root / "notifications.key"

    def notifications_key(self) -> str:
        """This deployment's ``ARTSTORE_NOTIFICATIONS_SECRET_KEYS``, made on first use."""
        path = self.notifications_key_file
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(_new_notifications_key() + "\n")
        return path.read_text().strip()

    def load_instance(self) -> Instance | None:
        """The deployment recorded in this data dir, if any."""
        try:
            return Instance(**json.loads(self.instance_file.read_text()))
        except FileNotFoundError:
            return None

    def save_instance(self, instance: Instance) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.instance_file.write_text(json.dumps(asdict(instance), indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class Urls:
    """Where a running ``artstore dev`` answers."""

    auth: str
    facade: str

    @classmethod
    def of(cls, ports: Ports) -> Urls:
        return cls(f"http://127.0.0.1:{ports.auth}", f"http://127.0.0.1:{ports.facade}")


@dataclass(frozen=True)
class ServicePlan:
    """One service: name, command, extra environment, health URL."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str


def shared_env(stack: StackEnv, instance: Instance, layout: Layout, ports: Ports) -> dict[str, str]:
    """The ``ARTSTORE_*`` settings every service of this deployment shares."""
    urls = Urls.of(ports)
    return {
        **stack.as_env(),
        "ARTSTORE_DATABASE_URL": with_database(stack.database_url, instance.database),
        "ARTSTORE_TOPIC_PREFIX": "artstore",
        "ARTSTORE_DATA_DIR": str(layout.root.resolve()),
        "ARTSTORE_STACK_DIR": str(layout.stack_dir.resolve()),
        "ARTSTORE_GRACEFUL_TIMEOUT_S": "5",
        "ARTSTORE_AUTH_ISSUER": urls.auth,
        "ARTSTORE_AUTH_REDIS_PREFIX": f"{instance.redis_prefix}auth:",
        "ARTSTORE_FACADE_REVOCATION_PREFIX": f"{instance.redis_prefix}auth:",
        "ARTSTORE_STORAGE_REVOCATION_PREFIX": f"{instance.redis_prefix}auth:",
        "ARTSTORE_FACADE_JWKS_URL": f"{urls.auth}/.well-known/jwks.json",
        "ARTSTORE_FACADE_ISSUER": urls.auth,
        "ARTSTORE_FACADE_CACHE_PREFIX": f"{instance.redis_prefix}query:",
        "ARTSTORE_FACADE_CACHE_GENERATION_KEY": f"{instance.redis_prefix}query:generation",
        "ARTSTORE_PROJECTOR_CACHE_GENERATION_KEY": f"{instance.redis_prefix}query:generation",
        "ARTSTORE_STORAGE_JWKS_URL": f"{urls.auth}/.well-known/jwks.json",
        "ARTSTORE_STORAGE_TOKEN_ISSUER": urls.auth,
        "ARTSTORE_STORAGE_HEARTBEAT_INTERVAL_S": "2",
        # Production floors keep tens of GB free; one machine's disk would read as full.
        "ARTSTORE_STORAGE_CAPACITY_BYTES": str(DEV_CAPACITY_BYTES),
        "ARTSTORE_STORAGE_FLOOR_WARNING_BYTES": str(2 * GB),
        "ARTSTORE_STORAGE_FLOOR_CRITICAL_BYTES": str(1 * GB),
        "ARTSTORE_STORAGE_FLOOR_FULL_BYTES": str(GB // 2),
        "ARTSTORE_STORAGE_SESSION_TIMEOUT_MS": "6000",
        "ARTSTORE_PROJECTOR_SESSION_TIMEOUT_MS": "6000",
        "ARTSTORE_NOTIFICATIONS_SECRET_KEYS": layout.notifications_key(),
        # One machine: a webhook receiver on this machine may be reached.
        "ARTSTORE_NOTIFICATIONS_ALLOWED_NETWORKS": "127.0.0.0/8",
        "ARTSTORE_NOTIFICATIONS_SESSION_TIMEOUT_MS": "6000",
    }


def plan_services(ports: Ports, *, python: str = sys.executable) -> list[ServicePlan]:
    """Auth, projector, facade, the webhook dispatcher and one worker per element, each its own
    process."""
    urls = Urls.of(ports)
    artstore = [python, "-m", "artstore"]
    plans = [
        ServicePlan(
            "auth",
            [*artstore, "auth", "serve", "--host", "127.0.0.1", "--port", str(ports.auth)],
            {},
            f"{urls.auth}/health/ready",
        ),
        ServicePlan(
            "projector",
            [*artstore, "query", "projector"],
            {"ARTSTORE_PROJECTOR_METRICS_PORT": str(ports.projector_metrics)},
            f"http://127.0.0.1:{ports.projector_metrics}/metrics",
        ),
        ServicePlan(
            "facade",
            [*artstore, "query", "facade"],
            {"ARTSTORE_FACADE_HOST": "127.0.0.1", "ARTSTORE_FACADE_PORT": str(ports.facade)},
            f"{urls.facade}/health/ready",
        ),
    ]
    plans.append(
        ServicePlan(
            "notifications",
            [*artstore, "notifications", "run"],
            {"ARTSTORE_NOTIFICATIONS_METRICS_PORT": str(ports.notifications_metrics)},
            f"http://127.0.0.1:{ports.notifications_metrics}/health/ready",
        )
    )
    for index, element in enumerate(ELEMENTS):
        env = {
            "ARTSTORE_STORAGE_ELEMENT_ID": element.element_id,
            "ARTSTORE_STORAGE_MODE": element.mode,
            "ARTSTORE_STORAGE_BACKEND": element.backend,
            "ARTSTORE_STORAGE_PRIORITY": str(element.priority),
            "ARTSTORE_STORAGE_HEALTH_PORT": str(ports.element_health(index)),
        }
        if element.backend == "s3":
            env["ARTSTORE_STORAGE_S3_PREFIX"] = f"elements/{element.element_id}/"
        if element.mode == "rw":
            # Archived (ro -> ar), its content moves to a cold tier of the same kind, and a
            # restore copies it back into the edit element for a while (docs/lifecycle.md).
            env["ARTSTORE_STORAGE_COLD_BACKEND"] = element.backend
            env["ARTSTORE_STORAGE_RESTORE_ELEMENT_ID"] = RESTORE_ELEMENT
        plans.append(
            ServicePlan(
                element.element_id,
                [*artstore, "storage", "worker"],
                env,
                f"http://127.0.0.1:{ports.element_health(index)}/health/ready",
            )
        )
    return plans


def child_environment(
    base: Mapping[str, str], shared: Mapping[str, str], plan: ServicePlan
) -> dict[str, str]:
    """The full environment of one service: the caller's, then the deployment's, then its own.

    ``ARTSTORE_ENV_FILE`` is dropped: the deployment sets every setting it relies on, and a
    file meant for another deployment must not fill in the rest.
    """
    env = {k: v for k, v in base.items() if k != "ARTSTORE_ENV_FILE"}
    env.update(shared)
    env.update(plan.env)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def env_file_text(shared: Mapping[str, str], urls: Urls, credentials: Credentials | None) -> str:
    """``KEY=value`` lines for ``ARTSTORE_ENV_FILE``: the deployment's settings, and the URLs
    and credentials under the SDK's names, so every ``artstore`` command can use the file."""
    values = dict(shared)
    values[CLIENT_FACADE_URL] = urls.facade
    values[CLIENT_AUTH_URL] = urls.auth
    if credentials is not None:
        values[CLIENT_ID] = credentials.client_id
        values[CLIENT_SECRET] = credentials.client_secret
    return "".join(f"{key}={_quote(value)}\n" for key, value in sorted(values.items()))


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a file written by :func:`env_file_text`."""
    import shlex

    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, raw = line.partition("=")
            parts = shlex.split(raw)
            values[key] = parts[0] if parts else ""
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only (it may hold the admin secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The bootstrap admin's client id and secret."""

    client_id: str
    client_secret: str


def parse_bootstrap_line(line: str) -> Credentials | None:
    """The credentials in the auth service's one-time bootstrap line, else None."""
    match = BOOTSTRAP_LINE.search(line)
    if match is None:
        return None
    return Credentials(match["client_id"], match["secret"])


def _quote(value: str) -> str:
    import shlex

    return shlex.quote(value)
