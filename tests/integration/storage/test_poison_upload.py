"""One upload that can never be stored does not take the others of its batch to the DLQ: a
batch that kept failing is tried again one upload at a time, and only the one that fails on
its own is dead-lettered (a real worker, a real element whose storage refuses one file)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner

from base.settings import Settings
from events import FileStored, Mode, Topic
from events.topics import TOPIC_SPECS
from storage_workers.backends import BackendError, LocalStorage, WrittenObject
from tests.helpers import wait_until
from tests.storage_support import FactLog, Producer, running_worker, worker_config

pytestmark = [pytest.mark.kafka]


UPLOAD_PARTITIONS = TOPIC_SPECS[Topic.UPLOADS_EDIT].partitions


def ids_in_one_partition(count: int, partitions: int) -> list[uuid.UUID]:
    """File ids the producer's partitioner (keyed by file id) puts in one partition."""
    place = DefaultPartitioner()
    every = list(range(partitions))
    found: list[uuid.UUID] = []
    while len(found) < count:
        candidate = uuid.uuid4()
        if place(str(candidate).encode(), every, every) == 0:
            found.append(candidate)
    return found


class RefusesOneFile(LocalStorage):
    """A real local element whose storage refuses to write one file, whatever is tried."""

    poisoned = ""

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        if self.poisoned and self.poisoned in key:
            raise BackendError(f"the storage refused {key}")
        return super().write_pending(key, chunks, durable=durable)


async def test_only_the_upload_that_fails_alone_is_dead_lettered(
    settings: Settings, jwks_file: Path, topics: None, producer: Producer, facts: FactLog
) -> None:
    # One partition, written before the worker starts: its first fetch is one batch of five.
    uploads = [
        producer.upload(
            f"upload {i}".encode(), f"u{i}.txt", retention_policy="temporary", file_id=file_id
        )
        for i, file_id in enumerate(ids_in_one_partition(5, UPLOAD_PARTITIONS))
    ]
    poison = uploads[2]
    await producer.send(*uploads)
    root = settings.data_dir / "se-poison"
    root.mkdir(parents=True)
    storage = RefusesOneFile(root)
    storage.poisoned = str(poison.file_id)
    config = worker_config(
        "se-poison",
        mode=Mode.EDIT,
        root=root,
        jwks_file=jwks_file,
        retry_attempts=2,
        retry_backoff_s=0.05,
    )
    async with running_worker(settings, config, backend=storage):
        for upload in uploads:
            if upload is not poison:
                await facts.wait(FileStored, within=60, file__file_id=upload.file_id)
        await wait_until(
            lambda: [r for r in facts.dlq if str(poison.file_id) in r.value.decode()],
            60,
            message="the poison upload dead-lettered",
        )
    dead = [r for r in facts.dlq if any(str(u.file_id) in r.value.decode() for u in uploads)]
    assert len(dead) == 1, "only the upload that can't be stored"
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["dlq_attempts"] == "2"
    assert "refused" in headers["dlq_error"]
    assert not facts.of(FileStored, file__file_id=poison.file_id)
