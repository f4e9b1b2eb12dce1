"""A local element's worker against the real broker: uploads, bad input, updates, deletes, modes."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import (
    ChangeMode,
    DeleteFile,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    MetadataUpdated,
    Mode,
    ModeChanged,
    ModeChangeRejected,
    RejectionReason,
    Topic,
    UpdateMetadata,
    UploadRejected,
)
from storage_workers.service import StorageService
from tests.brokers import stamps_record_time
from tests.helpers import wait_until
from tests.storage_support import (
    FactLog,
    Producer,
    matching,
    running_worker,
    worker_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.embedded_broker]


@pytest.fixture(scope="module")
async def service(
    settings: Settings, jwks_file: Path, topics: None, facts: FactLog
) -> AsyncIterator[StorageService]:
    root = settings.data_dir / "se-edit"
    (root / ".artstore" / "templates").mkdir(parents=True)
    (root / ".artstore" / "templates" / "invoice.json").write_text(
        '{"type":"object","required":["amount"],"properties":{"amount":{"type":"number"}}}'
    )
    config = worker_config("se-edit", mode=Mode.EDIT, root=root, jwks_file=jwks_file)
    async with running_worker(settings, config) as svc:
        yield svc


def temporary(producer: Producer, content: bytes, filename: str = "a.txt", **kw: object):
    return producer.upload(content, filename, retention_policy="temporary", **kw)


async def test_upload_is_stored_with_sidecar_and_checksum(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    content = b"hello archive\n" * 100
    command = temporary(producer, content, "report.pdf", tags=["x"])
    await producer.send(command)
    stored = await facts.wait(FileStored, file__file_id=command.file_id)
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    data = root / stored.file.storage_path
    assert data.read_bytes() == content
    assert hashlib.sha256(data.read_bytes()).hexdigest() == command.checksum
    sidecar = (root / (stored.file.storage_path + ".attr.json")).read_bytes()
    assert len(sidecar) <= 4096
    import json

    import jsonschema

    import schemas

    document = json.loads(sidecar)
    jsonschema.validate(document, schemas.attr_schema("2"))
    assert document["checksum"] == command.checksum
    assert stored.file.storage_filename.startswith("report_tester_")
    assert stored.file.storage_filename.endswith(f"_{command.file_id}.pdf")
    assert not matching(root, "*.tmp-*")
    staged = producer.staging / command.staged.path  # type: ignore[union-attr]
    await wait_until(lambda: not staged.exists(), 30, message="staged object removed")


@pytest.mark.parametrize(
    ("filename", "expect_stem"),
    [
        ("Отчёт за май.docx", "Отчёт_за_май"),
        ("../../etc/passwd", "passwd"),
        ("a\x00b/c\\d:e .txt", "d_e"),
        ("x" * 500 + ".bin", "x"),
    ],
)
async def test_hostile_and_long_names_follow_the_convention(
    service: StorageService, producer: Producer, facts: FactLog, filename: str, expect_stem: str
) -> None:
    command = temporary(producer, b"abc", filename)
    await producer.send(command)
    stored = await facts.wait(FileStored, file__file_id=command.file_id)
    name = stored.file.storage_filename
    assert len(name) <= 200
    assert name.startswith(expect_stem)
    assert "/" not in name
    assert "\x00" not in name
    assert ".." not in name.replace("...", "")
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    path = root / stored.file.storage_path
    assert path.read_bytes() == b"abc"
    assert path.resolve().is_relative_to(root)
    parts = stored.file.storage_path.split("/")
    assert len(parts) == 5
    assert all(p.isdigit() for p in parts[:4])
    if len(filename) > 200:
        assert "..._tester_" in name


async def test_redelivered_upload_reannounces_and_writes_nothing(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    command = temporary(producer, b"once")
    await producer.send(command)
    first = await facts.wait(FileStored, file__file_id=command.file_id)
    producer.stage(b"once")  # the staged object is gone; the redelivery must not need it
    await producer.send(command)
    await wait_until(lambda: len(facts.of(FileStored, file__file_id=command.file_id)) == 2, 30)
    second = facts.of(FileStored, file__file_id=command.file_id)[-1]
    assert second == first
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    assert len(matching(root, f"*{command.file_id}*")) == 2  # data + sidecar


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("checksum", RejectionReason.CHECKSUM_MISMATCH),
        ("size", RejectionReason.SIZE_MISMATCH),
        ("missing", RejectionReason.STAGED_OBJECT_MISSING),
        ("expired", RejectionReason.INVALID_TOKEN),
        ("forged", RejectionReason.INVALID_TOKEN),
        ("scope", RejectionReason.INSUFFICIENT_SCOPE),
        ("no_token", RejectionReason.INVALID_TOKEN),
        ("template", RejectionReason.TEMPLATE_VIOLATION),
        ("unknown_template", RejectionReason.TEMPLATE_VIOLATION),
        ("sidecar", RejectionReason.SIDECAR_TOO_LARGE),
    ],
)
async def test_bad_uploads_are_rejected_and_the_worker_keeps_consuming(
    service: StorageService, producer: Producer, facts: FactLog, case: str, reason: RejectionReason
) -> None:

    from events import FileStagedObject

    content = b"payload"
    token: str | None = None
    if case == "checksum":
        command = temporary(producer, content, checksum="0" * 64)
    elif case == "size":
        command = temporary(producer, content, file_size=3)
    elif case == "missing":
        command = temporary(
            producer, content, staged=FileStagedObject(path=f"{producer.client_id}/in/nope")
        )
    elif case == "expired":
        command = temporary(producer, content)
        token = producer.token(issued_at=datetime.now(UTC) - timedelta(hours=1))
    elif case == "forged":
        command = temporary(producer, content)
        token = TestSigner(slot=3).issue(scopes={"files:write"})
    elif case == "scope":
        command = temporary(producer, content)
        token = producer.token(scopes={"files:read"})
    elif case == "no_token":
        command = temporary(producer, content)
        token = ""
    elif case == "template":
        command = temporary(producer, content, template="invoice", custom_attributes={"a": 1})
    elif case == "unknown_template":
        command = temporary(producer, content, template="nope", custom_attributes={"a": 1})
    else:
        command = temporary(producer, content, metadata={"blob": "x" * 5000})
    await producer.send(command, token=token)
    rejected = await facts.wait(UploadRejected, file_id=command.file_id)
    assert rejected.reason is reason
    follow = temporary(producer, b"next")
    await producer.send(follow)
    await facts.wait(FileStored, file__file_id=follow.file_id)


async def test_malformed_records_go_to_rejection_or_dlq(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    file_id = str(uuid.uuid4())
    bad_schema = (
        '{"specversion":"1.0","id":"x","type":"artstore.upload.requested.v1","source":"t",'
        f'"time":"2026-01-01T00:00:00Z","subject":"{file_id}","correlation_id":"c",'
        f'"data":{{"file_id":"{file_id}"}}}}'
    )
    await producer.send_raw(Topic.UPLOADS_EDIT, file_id.encode(), bad_schema.encode(), {})
    await producer.send_raw(Topic.UPLOADS_EDIT, b"k", b"not json at all", {})
    rejected = await facts.wait(UploadRejected, file_id=uuid.UUID(file_id))
    assert rejected.reason is RejectionReason.INVALID_PAYLOAD
    await wait_until(
        lambda: any(r.value == b"not json at all" for r in facts.dlq), 30, message="dlq"
    )
    entry = next(r for r in facts.dlq if r.value == b"not json at all")
    headers = dict(entry.headers)
    assert headers["dlq_error"].startswith(b"not_json")
    follow = temporary(producer, b"after poison")
    await producer.send(follow)
    await facts.wait(FileStored, file__file_id=follow.file_id)


async def test_update_and_delete_are_applied_once(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    command = temporary(producer, b"to change", template="invoice", custom_attributes={"amount": 1})
    await producer.send(command)
    stored = await facts.wait(FileStored, file__file_id=command.file_id)
    update = UpdateMetadata(
        file_id=command.file_id, element_id="se-edit", description="new", tags=["a", "b"]
    )
    await producer.send(update)
    updated = await facts.wait(MetadataUpdated, file__file_id=command.file_id)
    assert updated.file.version == 2
    assert updated.file.description == "new"
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    import json

    sidecar = json.loads((root / (stored.file.storage_path + ".attr.json")).read_text())
    assert sidecar["description"] == "new"
    assert sidecar["version"] == 2
    conflict = UpdateMetadata(
        file_id=command.file_id, element_id="se-edit", description="x", expected_version=1
    )
    await producer.send(conflict)
    refused = await facts.wait(FileCommandRejected, file_id=command.file_id)
    assert refused.reason is RejectionReason.VERSION_CONFLICT
    await producer.send(DeleteFile(file_id=command.file_id, element_id="se-edit"))
    deleted = await facts.wait(FileDeleted, file_id=command.file_id)
    assert deleted.storage_path == stored.file.storage_path
    assert not (root / stored.file.storage_path).exists()
    assert not (root / (stored.file.storage_path + ".attr.json")).exists()
    await producer.send(DeleteFile(file_id=command.file_id, element_id="se-edit"))
    await wait_until(lambda: len(facts.of(FileDeleted, file_id=command.file_id)) == 2, 30)
    missing = uuid.uuid4()
    await producer.send(DeleteFile(file_id=missing, element_id="se-edit"))
    nf = await facts.wait(FileCommandRejected, file_id=missing)
    assert nf.reason is RejectionReason.FILE_NOT_FOUND


async def test_edit_elements_never_change_mode(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    await producer.send(ChangeMode(element_id="se-edit", target_mode=Mode.RO, reason="try"))
    refused = await facts.wait(ModeChangeRejected, element_id="se-edit")
    assert refused.allowed == []
    assert "never" in refused.reason
    assert not facts.of(ModeChanged, element_id="se-edit")


async def test_a_back_dated_command_cannot_revive_an_expired_token_where_the_broker_stamps_time(
    service: StorageService, producer: Producer, facts: FactLog, settings: Settings
) -> None:
    if not await stamps_record_time(settings.kafka_bootstrap):
        pytest.skip(
            "this broker keeps the producer's timestamp on LogAppendTime topics: there only the "
            "maximum command age bounds a back-dated record (the next test)"
        )
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = producer.token(issued_at=issued)  # valid for 15 minutes, two hours ago
    command = temporary(producer, b"back-dated")
    await producer.send_at(command, token=token, timestamp=issued + timedelta(minutes=5))
    rejected = await facts.wait(UploadRejected, file_id=command.file_id)
    assert rejected.reason is RejectionReason.INVALID_TOKEN
    assert "expired" in rejected.detail
    assert not facts.of(FileStored, file__file_id=command.file_id)


async def test_a_command_back_dated_beyond_the_maximum_age_is_refused_on_every_broker(
    service: StorageService, producer: Producer, facts: FactLog, settings: Settings
) -> None:
    issued = datetime.now(UTC) - timedelta(hours=30)
    token = producer.token(issued_at=issued)
    command = temporary(producer, b"back-dated a day")
    await producer.send_at(command, token=token, timestamp=issued + timedelta(minutes=5))
    rejected = await facts.wait(UploadRejected, file_id=command.file_id)
    if await stamps_record_time(settings.kafka_bootstrap):
        # The broker's time is now: the token is judged now, and it has long expired.
        assert rejected.reason is RejectionReason.INVALID_TOKEN
    else:
        # The record keeps its claimed time, 30 hours ago: older than the 24-hour maximum age.
        assert rejected.reason is RejectionReason.COMMAND_TOO_OLD
    assert not facts.of(FileStored, file__file_id=command.file_id)


async def test_a_staged_file_larger_than_declared_is_refused_before_a_byte_is_copied(
    service: StorageService, producer: Producer, facts: FactLog
) -> None:
    # A terabyte (sparse: it takes no room here) declared as seven bytes: copying it first
    # and comparing after would fill the element's disk before the refusal.
    command = temporary(producer, b"payload")
    staged = producer.staging / command.staged.path  # type: ignore[union-attr]
    with staged.open("r+b") as handle:
        handle.truncate(2**40)
    await producer.send(command)
    rejected = await facts.wait(UploadRejected, within=60, file_id=command.file_id)
    assert rejected.reason is RejectionReason.SIZE_MISMATCH
    # Said when the file was opened (its size), not by a comparison after the whole copy.
    assert rejected.detail == (
        f"staged file {command.staged.path} has {2**40} bytes, "  # type: ignore[union-attr]
        f"the command declared {len(b'payload')}"
    )
    root = Path(service.element_backend.root)  # type: ignore[union-attr]
    assert not matching(root, f"*{command.file_id}*"), "nothing of it is left in the element"
