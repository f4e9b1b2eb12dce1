"""Poison records in the dead-letter topic: listed, shown, and after the fault is mended redriven
with ``artstore dlq redrive --execute`` — twice — and each one stored once.

The element's backend is real (a local directory); a wrapper makes every write fail while the
outage lasts, the way a disk gone read-only would, so the worker's retries run out and it
dead-letters the uploads (:mod:`tests.dead_letter_support`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from base.settings import Settings
from events import AuditRecorded, FileStored, Mode, Topic, decode_record
from events.dead_letters import SOURCE_TOPIC
from storage_workers.service import StorageService
from tests.dead_letter_support import Outage, redriven, whole_topic
from tests.helpers import wait_until
from tests.storage_support import (
    FactLog,
    Producer,
    running_worker,
    worker_config,
)

pytestmark = [pytest.mark.kafka]


@pytest.fixture(scope="module")
def outage(settings: Settings) -> Outage:
    root = settings.data_dir / "se-redrive"
    root.mkdir(parents=True)
    return Outage(root)


@pytest.fixture(scope="module")
async def service(
    settings: Settings, jwks_file: Path, topics: None, facts: FactLog, outage: Outage
) -> AsyncIterator[StorageService]:
    outage.away = False  # the element registers itself; the outage starts once it consumes
    config = worker_config(
        "se-redrive",
        mode=Mode.EDIT,
        root=settings.data_dir / "se-redrive",
        jwks_file=jwks_file,
        retry_attempts=2,
        retry_backoff_s=0.05,
    )
    async with running_worker(settings, config, backend=outage) as svc:
        yield svc


def artstore(settings: Settings, *args: str) -> Any:
    """Run the ``artstore`` CLI against this module's deployment; its JSON output."""
    env = {
        **os.environ,
        "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
        "ARTSTORE_DATABASE_URL": settings.database_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "artstore", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_poison_uploads_are_redriven_once_after_the_fault_is_mended(
    settings: Settings, service: StorageService, producer: Producer, facts: FactLog, outage: Outage
) -> None:
    outage.away = True
    uploads = [
        producer.upload(f"poison {i}".encode(), f"p{i}.txt", retention_policy="temporary")
        for i in range(3)
    ]
    await producer.send(*uploads)
    file_ids = {str(u.file_id) for u in uploads}
    await wait_until(
        lambda: file_ids <= {r.key.decode() for r in facts.dlq}, 60, message="dead-lettered"
    )

    listed = artstore(settings, "dlq", "list", "--error", "BackendError", "--json")
    assert listed["total"] == 3
    assert {d["group"] for d in listed["dead_letters"]} == {
        f"{settings.topic_prefix}.storage.uploads.edit"
    }
    assert all(d["attempts"] == 2 for d in listed["dead_letters"])
    uploads_topic = settings.topic_names().name(Topic.UPLOADS_EDIT)
    assert listed["counts"] == [
        {
            "source_topic": uploads_topic,
            "group": f"{settings.topic_prefix}.storage.uploads.edit",
            "reason": "retries_exhausted",
            "count": 3,
        }
    ]
    assert artstore(settings, "dlq", "list", "--group", "nobody", "--json")["total"] == 0

    shown = artstore(settings, "dlq", "show", listed["dead_letters"][0]["id"])
    assert shown["headers"][SOURCE_TOPIC] == uploads_topic
    assert shown["payload"]["data"]["file_id"] in file_ids
    assert shown["headers"]["authorization"] == "Bearer [redacted]"  # the producer's token

    outage.away = False
    dry = artstore(settings, "dlq", "redrive", "--error", "BackendError", "--json")
    assert dry["counts"]["would_send"] == 3
    assert not [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]

    first = artstore(settings, "dlq", "redrive", "--execute", "--actor", "ops", "--json")
    second = artstore(settings, "dlq", "redrive", "--execute", "--actor", "ops", "--json")
    assert first["counts"]["sent"] == 3
    assert second["counts"] == {**second["counts"], "sent": 0, "already_redriven": 3}

    for upload in uploads:
        await facts.wait(FileStored, file__file_id=upload.file_id)
    resent = [r for r in await whole_topic(settings, Topic.UPLOADS_EDIT) if redriven(r)]
    assert sorted(r.key.decode() for r in resent) == sorted(file_ids)
    root = settings.data_dir / "se-redrive"
    for upload in uploads:
        named = root.rglob(f"*{upload.file_id}*")
        assert len([p for p in named if not p.name.endswith(".attr.json")]) == 1
        assert len(facts.of(FileStored, file__file_id=upload.file_id)) == 1
    audit = [
        decode_record(r, max_bytes=settings.max_message_bytes)
        for r in await whole_topic(settings, Topic.AUDIT)
    ]
    redrives = [
        e.envelope.data
        for e in audit
        if isinstance(e.envelope.data, AuditRecorded) and e.envelope.data.action == "dlq.redriven"
    ]
    assert sorted(r.subject for r in redrives) == sorted(
        d["source"] for d in listed["dead_letters"]
    )
    assert {r.actor for r in redrives} == {"ops"}
