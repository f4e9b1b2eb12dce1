"""Fixtures for storage tests against the real stack (on top of the shared ``settings``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from artstore.settings import Settings
from auth.testing import TestSigner
from events import create_topics
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
