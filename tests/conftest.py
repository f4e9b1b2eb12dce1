"""Fixtures shared by every test: the real stack, a fresh database and topic prefix per module.

The stack comes from ``artstore.stack`` (started by ``make test``; started here if it is not
running, and then stopped again at the end of the session). When ``ARTSTORE_KAFKA_BOOTSTRAP``,
``ARTSTORE_DATABASE_URL``, ``ARTSTORE_REDIS_URL`` and ``ARTSTORE_S3_ENDPOINT`` are all set in the
environment, those services are used as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from artstore.stack import StackEnv, ensure_stack, stack_is_running, stop_stack
from artstore.stack.lifecycle import describe_kafka
from base.logging import ExtrasFormatter
from base.settings import Settings, load_settings
from tests.brokers import delete_topics
from tests.helpers import fresh_database, s3_client


def pytest_report_header(config: pytest.Config) -> str:
    """Name the broker every Kafka test of this run talks to."""
    return f"kafka broker: {describe_kafka()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A failed test's captured log shows each line's ``extra=`` fields (the reason a warning
    names), as the services' own text log does."""
    plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    if plugin is not None:
        shown = plugin.report_handler.formatter
        plugin.report_handler.setFormatter(
            ExtrasFormatter(shown._fmt if shown else None, shown.datefmt if shown else None)
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[StackEnv]:
    """The real services: from the environment, the running stack, or one started for us."""
    given = StackEnv.from_env(os.environ)
    if given is not None:
        yield given
        return
    already_running = stack_is_running()
    env = ensure_stack()
    yield env
    if not already_running:
        stop_stack()


@pytest.fixture(scope="module")
async def database_url(stack: StackEnv) -> AsyncIterator[str]:
    """A fresh database (``artstore_t_<hex>``) for this module, dropped afterwards."""
    async with fresh_database(stack.database_url) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(stack: StackEnv) -> str:
    """The stack's Redis; share it politely through :func:`redis_namespace`."""
    return stack.redis_url


@pytest.fixture(scope="module")
def redis_namespace() -> str:
    """A key prefix no other module uses."""
    return f"t{secrets.token_hex(6)}:"


@pytest.fixture(scope="module")
def topic_prefix(stack: StackEnv) -> Iterator[str]:
    """A topic prefix no other module uses, so each module sees only its own records. The
    module's topics are deleted afterwards: a broker that keeps its log (Apache Kafka) would
    otherwise reload every test run's partitions at each start."""
    prefix = f"t{secrets.token_hex(6)}.artstore"
    yield prefix
    asyncio.run(delete_topics(stack.kafka_bootstrap, prefix))


@pytest.fixture(scope="module")
def s3_bucket(stack: StackEnv) -> Iterator[str]:
    """A fresh, empty bucket on the stack's S3; emptied and removed afterwards (best effort)."""
    client = s3_client(stack)
    name = f"t{secrets.token_hex(8)}"
    client.make_bucket(name)
    yield name
    with contextlib.suppress(Exception):
        for item in client.list_objects(name, recursive=True):
            if item.object_name is not None:
                client.remove_object(name, item.object_name)
        client.remove_bucket(name)


@pytest.fixture(scope="module")
def settings(
    stack: StackEnv,
    database_url: str,
    redis_url: str,
    topic_prefix: str,
    s3_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings pointing at this module's database, topics, bucket and a fresh data dir."""
    data_dir: Path = tmp_path_factory.mktemp("data")
    return load_settings(
        kafka_bootstrap=stack.kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_url=database_url,
        redis_url=redis_url,
        s3_endpoint=stack.s3_endpoint,
        s3_access_key=stack.s3_access_key,
        s3_secret_key=stack.s3_secret_key,
        s3_secure=stack.s3_secure,
        s3_region=stack.s3_region,
        s3_bucket=s3_bucket,
        data_dir=data_dir,
    )
