"""Fixtures of the query tests: topics created and the projection migrated per module."""

from __future__ import annotations

import pytest

from base.settings import Settings
from consumers.migrate import migrate
from events import create_topics


@pytest.fixture(scope="module")
async def topics(settings: Settings) -> Settings:
    """The module's topics exist."""
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    return settings


@pytest.fixture(scope="module")
async def migrated(settings: Settings) -> Settings:
    """The module's database has the projection tables."""
    await migrate(settings.database_url)
    return settings
