"""Fixtures of the operators' tools tests: topics, a token signer whose keys the test elements
trust, a producer of commands and a collector of facts and dead letters."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import create_topics
from tests.storage_support import FactLog, Producer


@pytest.fixture(scope="module")
async def topics(settings: Settings) -> Settings:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    return settings


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture(scope="module")
def jwks_file(signer: TestSigner, settings: Settings) -> Path:
    path = settings.data_dir / "jwks.json"
    path.write_text(json.dumps(signer.jwks()))
    return path


@pytest.fixture(scope="module")
async def facts(topics: Settings) -> AsyncIterator[FactLog]:
    log = FactLog(topics)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(scope="module")
async def producer(topics: Settings, signer: TestSigner) -> AsyncIterator[Producer]:
    staging = topics.data_dir / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    p = Producer(topics, signer, staging)
    await p.start()
    yield p
    await p.stop()
