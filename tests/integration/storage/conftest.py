"""Fixtures for storage tests against the real stack (on top of the shared ``settings``)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from artstore.stack import ensure_stack
from auth.testing import TestSigner
from base.settings import Settings
from events import S3Backend, create_topics
from storage_workers.backends import LocalStorage, S3Storage, StorageBackend
from tests.storage_support import FactLog, Producer


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def jwks_file(signer: TestSigner, settings: Settings) -> Path:
    path = settings.data_dir / "jwks.json"
    path.write_text(json.dumps(signer.jwks()))
    return path


@pytest.fixture(scope="module")
async def topics(settings: Settings) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())


@pytest.fixture(scope="module")
async def facts(settings: Settings, topics: None) -> AsyncIterator[FactLog]:
    log = FactLog(settings)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(scope="module")
async def producer(settings: Settings, signer: TestSigner, topics: None) -> AsyncIterator[Producer]:
    staging = settings.data_dir / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    p = Producer(settings, signer, staging)
    await p.start()
    yield p
    await p.stop()


@contextlib.contextmanager
def s3_storage() -> Iterator[S3Storage]:
    """An element in a bucket of its own, emptied and removed afterwards: every bucket is a
    SeaweedFS collection with volumes of its own, and a long-lived local stack runs out."""
    env = ensure_stack()
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(
        S3Backend(endpoint=env.s3_endpoint, bucket=bucket, prefix="se-s3", region=env.s3_region),
        access_key=env.s3_access_key,
        secret_key=env.s3_secret_key,
    )
    storage.client.make_bucket(bucket)
    try:
        yield storage
    finally:
        with contextlib.suppress(Exception):
            for item in storage.client.list_objects(bucket, recursive=True):
                if item.object_name is not None:
                    storage.client.remove_object(bucket, item.object_name)
            storage.client.remove_bucket(bucket)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "element")
    else:
        with s3_storage() as storage:
            yield storage
