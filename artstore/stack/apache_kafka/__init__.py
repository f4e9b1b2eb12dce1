"""The production broker for the stack: Apache Kafka in KRaft mode, from Maven Central's jars.

Maven resolves ``org.apache.kafka:kafka_2.13`` (version pinned in ``pom.xml`` beside this file)
and its runtime dependencies into a cache directory outside the repository, once per version.
The broker runs as one combined broker + controller node on two free loopback ports, with its log
in the state directory, so it keeps its topics across ``down`` and ``up`` like a real one.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from artstore.stack import processes
from artstore.stack.errors import StackError
from artstore.stack.probes import LOOPBACK, free_ports, kafka_brokers
from artstore.stack.state import ServiceRecord

NAME = "kafka"
PROGRAM = "java"
FLAVOUR = "apache"
START_TIMEOUT_S = 300.0
"""How long a start may take: the broker loads every partition of its log before it answers
(about 60 s for 12,000 partitions on a 2-core machine)."""
POM = Path(__file__).with_name("pom.xml")
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
_MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
#: Marker written once every jar of a resolution is in place.
_COMPLETE = ".complete"
#: The broker's heap: ample for a test broker with thousands of partitions, small on a laptop.
HEAP = "-Xmx512m"


def kafka_version() -> str:
    """The Apache Kafka version the pom pins."""
    # The pom is our own file, shipped with the package.
    pom = ET.parse(POM)  # noqa: S314
    version = pom.getroot().find("m:properties/m:kafka.version", _MAVEN_NS)
    if version is None or not version.text:
        raise StackError(f"{POM} pins no kafka.version")
    return version.text.strip()


def missing_tools() -> list[str]:
    """The programs this broker needs that the machine lacks (``java`` 17+, ``mvn``)."""
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def cache_root() -> Path:
    """``$ARTSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/artstore``, else ``~/.cache/artstore``."""
    configured = os.environ.get("ARTSTORE_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "artstore"


def jars_dir() -> Path:
    """Where the resolved jars of the pinned version live (keyed by the pom's contents)."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return cache_root() / f"apache-kafka-{kafka_version()}-{digest}"


def ensure_jars(timeout: float = 600.0) -> Path:
    """Resolve the broker's jars with Maven unless they are cached; return their directory."""
    target = jars_dir()
    if (target / _COMPLETE).exists():
        return target
    missing = missing_tools()
    if missing:
        raise StackError(
            f"Apache Kafka needs {' and '.join(missing)} on PATH "
            "(Debian: apt-get install openjdk-17-jre-headless maven)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if (target / _COMPLETE).exists():  # another process resolved it meanwhile
            return target
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise StackError(
                f"Maven could not resolve Apache Kafka {kafka_version()} from {POM}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        (staging / _COMPLETE).write_text(kafka_version() + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _java(jars: Path, *args: str) -> list[str]:
    return [
        "java",
        HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "-cp",
        f"{jars}/*",
        *args,
    ]


def _server_properties(data: Path, broker_port: int, controller_port: int) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # A static quorum of this one node: its address may change between starts.
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{broker_port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data / "log"),
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "6",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # As in production (compose): topics are created explicitly, records up to 1 MiB.
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(1024 * 1024),
        # A consumer group forms as soon as its first member joins (production waits 3 s), and
        # tests may shorten session timeouts to 1 s so a killed member's partitions move quickly.
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _cluster_id() -> str:
    """A KRaft cluster id: a random UUID in unpadded URL-safe base64, as Kafka's tools make."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def format_log(jars: Path, config: Path, cluster_id: str) -> None:
    """Format the KRaft log ``config`` names for ``cluster_id``."""
    # The id is base64 and may begin with '-': given as "--cluster-id=<id>", never as a
    # separate word the tool's argument parser would take for an option.
    result = subprocess.run(
        _java(
            jars,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            f"{config}",
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"formatting Kafka's log failed:\n{result.stdout}\n{result.stderr}")


def start(state_dir: Path, ports: tuple[int, int] | None = None) -> ServiceRecord:
    """Format the log directory (first time) and start the broker; not yet known ready.

    ``ports`` (broker, controller) restarts a broker where clients already look for it;
    by default two free ports are chosen.
    """
    jars = ensure_jars()
    root = state_dir / "apache-kafka"
    root.mkdir(parents=True, exist_ok=True)
    broker_port, controller_port = ports or free_ports(2)
    config = root / "server.properties"
    config.write_text(_server_properties(root, broker_port, controller_port))
    log = state_dir / "apache-kafka.log"
    if not (root / "log" / "meta.properties").exists():
        format_log(jars, config, _cluster_id())
    pid = processes.launch(_java(jars, "kafka.Kafka", str(config)), log=log, cwd=root)
    return ServiceRecord(
        name=NAME,
        url=f"{LOOPBACK}:{broker_port}",
        owned=True,
        pid=pid,
        program=PROGRAM,
        ports={"kafka": broker_port, "controller": controller_port},
        data_dir=str(root),
        log=str(log),
        detail=f"broker={FLAVOUR} version={kafka_version()}",
    )


def ready(record: ServiceRecord) -> bool:
    """The broker answers a metadata request and advertises the address clients use."""
    port = record.ports["kafka"]
    brokers = kafka_brokers(LOOPBACK, port)
    return brokers is not None and (LOOPBACK, port) in brokers


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
