"""Claim checks reach only the caller's own staged bytes: every attack below is refused as
``invalid_claim_check`` before anything is read, nothing lands on the element, the detail says
nothing about the target, and the target is left as it was (never removed)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from minio import Minio

from base.settings import Settings
from events import (
    FileStagedObject,
    FileStored,
    Mode,
    RejectionReason,
    S3StagedObject,
    UploadRejected,
)
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import (
    FactLog,
    Producer,
    running_worker,
    worker_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.s3]

ELEMENT = "se-claims"
SECRET = b"ARTSTORE_CLIENT_CLIENT_SECRET=do-not-leak-this-" + secrets.token_hex(16).encode()
OTHER_CLIENT = "sa_test_other_11111111"


@pytest.fixture(scope="module")
def element_root(settings: Settings) -> Path:
    return settings.data_dir / ELEMENT


@pytest.fixture(scope="module")
async def service(
    settings: Settings, element_root: Path, jwks_file: Path, topics: None, facts: FactLog
) -> AsyncIterator[StorageService]:
    config = worker_config(ELEMENT, mode=Mode.RW, root=element_root, jwks_file=jwks_file)
    async with running_worker(settings, config) as svc:
        yield svc


@pytest.fixture(scope="module")
def secret_file(settings: Settings) -> Path:
    """A file outside staging the worker can read (as artstore-data/artstore.env is)."""
    path = settings.data_dir / "artstore.env"
    path.write_bytes(SECRET)
    return path


@pytest.fixture(scope="module")
def foreign_bucket(settings: Settings) -> Iterator[str]:
    """A bucket like the broker's log bucket, holding an object with a caller's token."""
    client = s3_client_for(settings)
    name = f"tansu-{uuid.uuid4().hex[:12]}"
    client.make_bucket(name)
    client.put_object(name, "log/00000000.batch", io.BytesIO(SECRET), len(SECRET))
    yield name
    client.remove_object(name, "log/00000000.batch")
    client.remove_bucket(name)


def s3_client_for(settings: Settings) -> Minio:
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


def stored_files(root: Path) -> list[Path]:
    """Every file on the element outside its own bookkeeping (.artstore)."""
    return [p for p in root.rglob("*") if p.is_file() and ".artstore" not in p.parts]


async def refused(producer: Producer, facts: FactLog, staged: object) -> UploadRejected:
    """Send an upload whose claim check is ``staged`` (declaring the secret's size and hash:
    the attacker's best guess) and wait for its rejection."""
    command = producer.upload(
        SECRET, staged=staged, checksum=hashlib.sha256(SECRET).hexdigest(), file_size=len(SECRET)
    )
    await producer.send(command)
    rejected: UploadRejected = await facts.wait(UploadRejected, file_id=command.file_id)
    assert not facts.of(FileStored, file__file_id=command.file_id)
    return rejected


def assert_reveals_nothing(rejected: UploadRejected) -> None:
    assert rejected.reason is RejectionReason.INVALID_CLAIM_CHECK
    assert not re.search(rf"\b{len(SECRET)}\b", rejected.detail), "no size"
    assert hashlib.sha256(SECRET).hexdigest() not in rejected.detail
    assert "not read" in rejected.detail


def untouched(path: Path) -> bool:
    """The target still holds exactly what it held."""
    return path.read_bytes() == SECRET


def own(producer: Producer, name: str) -> Path:
    path = producer.staging / producer.client_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def test_a_symlink_in_the_callers_namespace_is_refused_unread(
    service: StorageService,
    producer: Producer,
    facts: FactLog,
    secret_file: Path,
    element_root: Path,
) -> None:
    link = own(producer, f"link-{uuid.uuid4().hex}")
    link.symlink_to(secret_file)
    rejected = await refused(
        producer, facts, FileStagedObject(path=link.relative_to(producer.staging).as_posix())
    )
    assert_reveals_nothing(rejected)
    assert stored_files(element_root) == []
    assert link.is_symlink()
    assert untouched(secret_file)


async def test_a_symlinked_directory_on_the_way_is_refused(
    service: StorageService,
    producer: Producer,
    facts: FactLog,
    secret_file: Path,
    element_root: Path,
) -> None:
    hop = own(producer, f"dir-{uuid.uuid4().hex}")
    hop.symlink_to(secret_file.parent, target_is_directory=True)
    claim = f"{hop.relative_to(producer.staging).as_posix()}/{secret_file.name}"
    assert_reveals_nothing(await refused(producer, facts, FileStagedObject(path=claim)))
    assert stored_files(element_root) == []
    assert untouched(secret_file)


async def test_a_hard_link_in_the_callers_namespace_is_refused(
    service: StorageService,
    producer: Producer,
    facts: FactLog,
    secret_file: Path,
    element_root: Path,
) -> None:
    link = own(producer, f"hard-{uuid.uuid4().hex}")
    os.link(secret_file, link)
    claim = link.relative_to(producer.staging).as_posix()
    assert_reveals_nothing(await refused(producer, facts, FileStagedObject(path=claim)))
    assert stored_files(element_root) == []
    assert untouched(secret_file)
    assert untouched(link)


@pytest.mark.parametrize(
    "claim",
    [
        pytest.param(f"{OTHER_CLIENT}/in/theirs", id="another-callers-staging"),
        pytest.param("theirs-at-the-root", id="outside-every-namespace"),
        pytest.param("{own}/../" + OTHER_CLIENT + "/in/theirs", id="dot-dot-out-of-namespace"),
        pytest.param("../artstore.env", id="dot-dot-out-of-staging"),
        pytest.param("{own}", id="the-namespace-itself"),
    ],
)
async def test_a_local_claim_check_outside_the_callers_namespace_is_refused(
    service: StorageService,
    producer: Producer,
    facts: FactLog,
    secret_file: Path,
    element_root: Path,
    claim: str,
) -> None:
    theirs = producer.staging / OTHER_CLIENT / "in" / "theirs"
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_bytes(SECRET)
    (producer.staging / "theirs-at-the-root").write_bytes(SECRET)
    path = claim.format(own=producer.client_id)
    assert_reveals_nothing(await refused(producer, facts, FileStagedObject(path=path)))
    assert stored_files(element_root) == []
    assert untouched(theirs), "another caller's staged bytes are never removed"
    assert untouched(secret_file)


async def test_s3_keys_that_are_not_the_callers_staged_bytes_are_refused(
    service: StorageService,
    producer: Producer,
    facts: FactLog,
    settings: Settings,
    element_root: Path,
    foreign_bucket: str,
) -> None:
    client = s3_client_for(settings)
    bucket = settings.s3_bucket
    targets = {
        "another element's object": (bucket, f"elements/se-other/2026/01/01/00/{uuid.uuid4()}"),
        "another caller's staging": (bucket, f"staging/{OTHER_CLIENT}/{uuid.uuid4()}"),
        "a prefix that only starts like the caller's": (
            bucket,
            f"staging/{producer.client_id}x/{uuid.uuid4()}",
        ),
        "outside the staging prefix": (bucket, f"{producer.client_id}/{uuid.uuid4()}"),
    }
    for target_bucket, key in targets.values():
        client.put_object(target_bucket, key, io.BytesIO(SECRET), len(SECRET))
    targets["the broker's log"] = (foreign_bucket, "log/00000000.batch")
    for what, (target_bucket, key) in targets.items():
        rejected = await refused(producer, facts, S3StagedObject(bucket=target_bucket, key=key))
        assert_reveals_nothing(rejected)
        assert key not in rejected.detail, what
        kept = client.get_object(target_bucket, key)
        assert kept.read() == SECRET, f"{what} is left as it was"
    assert stored_files(element_root) == []


async def test_the_callers_own_staged_bytes_are_stored_and_then_removed(
    service: StorageService, producer: Producer, facts: FactLog, settings: Settings
) -> None:
    """The confinement lets the honest path through: local and S3 claims in the namespace."""
    content = b"mine, staged where I may stage"
    command = producer.upload(content)
    await producer.send(command)
    await facts.wait(FileStored, file__file_id=command.file_id)
    staged = producer.staging / command.staged.path  # type: ignore[union-attr]
    await wait_until(lambda: not staged.exists(), 30, message="staged file removed")

    client = s3_client_for(settings)
    key = f"staging/{producer.client_id}/{uuid.uuid4()}"
    client.put_object(settings.s3_bucket, key, io.BytesIO(content), len(content))
    s3_command = producer.upload(content, staged=S3StagedObject(bucket=settings.s3_bucket, key=key))
    await producer.send(s3_command)
    await facts.wait(FileStored, file__file_id=s3_command.file_id)
    await wait_until(
        lambda: not list(client.list_objects(settings.s3_bucket, prefix=key)),
        30,
        message="staged object removed",
    )
