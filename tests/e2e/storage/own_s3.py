"""An S3 of a test's own (SeaweedFS), stoppable and restartable on the same ports and data."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

from minio import Minio

from artstore.stack import processes, seaweedfs
from artstore.stack.env import DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_SECRET_KEY
from artstore.stack.state import ServiceRecord
from tests.helpers import wait_until


class OwnS3:
    """``weed mini`` in the test's directory: stopping it is an S3 outage for whoever uses it
    and nobody else; started again it answers on the same ports with the same objects."""

    def __init__(self, directory: Path, bucket: str) -> None:
        self.directory = directory
        self.bucket = bucket
        self.access_key = DEFAULT_S3_ACCESS_KEY
        self.secret_key = DEFAULT_S3_SECRET_KEY
        self.record: ServiceRecord | None = None
        self._ports: dict[str, int] | None = None

    @property
    def endpoint(self) -> str:
        assert self._ports is not None, "start it first"
        return f"127.0.0.1:{self._ports['s3']}"

    def client(self) -> Minio:
        return Minio(
            self.endpoint, access_key=self.access_key, secret_key=self.secret_key, secure=False
        )

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = await asyncio.to_thread(
            seaweedfs.start,
            self.directory,
            access_key=self.access_key,
            secret_key=self.secret_key,
            buckets=[self.bucket],
            ports=self._ports,
        )
        self.record, self._ports = record, dict(record.ports)
        await wait_until(
            lambda: asyncio.to_thread(seaweedfs.ready, record), 120, message="own S3 ready"
        )

        def bucket_ready() -> bool:
            try:
                return self.client().bucket_exists(self.bucket)
            except Exception:  # the gateway answers health before its filer is up
                return False

        await wait_until(
            lambda: asyncio.to_thread(bucket_ready), 60, interval=0.5, message="own bucket"
        )

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.record is None or self.record.pid is None:
            return
        record, self.record = self.record, None
        await asyncio.to_thread(
            processes.stop, record.pid, program=seaweedfs.PROGRAM, sig=sig, timeout=30
        )
        seaweedfs.remove_sockets(record)

    def remove(self) -> None:
        shutil.rmtree(self.directory / "seaweedfs", ignore_errors=True)
