"""Fixtures for storage tests against the real stack."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from artstore.settings import Settings
from auth.testing import TestSigner
from events import create_topics
from tests.storage_support import FactLog, Producer, stack_settings


@pytest.fixture(scope="module")
def storage_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return stack_settings(tmp_path_factory.mktemp("storage"))


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def jwks_file(signer: TestSigner, storage_settings: Settings) -> Path:
    path = storage_settings.data_dir / "jwks.json"
    path.write_text(json.dumps(signer.jwks()))
    return path


@pytest.fixture(scope="module")
async def topics(storage_settings: Settings) -> None:
    await create_topics(storage_settings.kafka_bootstrap, storage_settings.topic_names())


@pytest.fixture(scope="module")
async def facts(storage_settings: Settings, topics: None) -> AsyncIterator[FactLog]:
    log = FactLog(storage_settings)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(scope="module")
async def producer(
    storage_settings: Settings, signer: TestSigner, topics: None
) -> AsyncIterator[Producer]:
    staging = storage_settings.data_dir / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    p = Producer(storage_settings, signer, staging)
    await p.start()
    yield p
    await p.stop()
