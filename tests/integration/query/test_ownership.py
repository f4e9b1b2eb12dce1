"""The facade refuses a `user` account's change to a file another account uploaded (403
``not_owner``) before any command is published; the uploader and admins pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from base.settings import Settings
from events import FileStored, Topic
from tests.helpers import wait_until
from tests.integration.query.support import (
    FacadeHarness,
    FactPublisher,
    facade_harness,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
RECORD = make_record(filename="owned.txt", username="owner")
OWNER = RECORD.created_by_id
STRANGER = "sa_test_stranger_22222222"


@pytest.fixture(scope="module")
async def facade(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[FacadeHarness]:
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        async with FactPublisher(topics) as pub:
            await pub.publish([FileStored(file=RECORD)])

        async def indexed() -> bool:
            return (await harness.get(f"/api/v1/files/{RECORD.file_id}")).status_code == 200

        await wait_until(indexed, timeout=30)
        yield harness


async def commands_for(settings: Settings) -> int:
    """How many file commands were ever published (the topic's end offsets, summed)."""
    name = settings.topic_names().name(Topic.FILE_COMMANDS)
    consumer = AIOKafkaConsumer(
        name, bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await wait_until(lambda: bool(consumer.assignment()), 30, message="partitions assigned")
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return sum(ends.values())
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("method", "scope", "body"),
    [("PATCH", "metadata:write", {"description": "mine now"}), ("DELETE", "files:delete", None)],
)
async def test_a_user_may_not_change_another_accounts_file(
    facade: FacadeHarness, method: str, scope: str, body: object
) -> None:
    before = await commands_for(facade.settings)
    response = await facade.http.request(
        method,
        f"/api/v1/files/{RECORD.file_id}",
        headers=facade.token(scope, client_id=STRANGER, role="user"),
        json=body,
    )
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["reason"] == "not_owner"
    assert OWNER in problem["detail"]
    assert STRANGER in problem["detail"]
    assert await commands_for(facade.settings) == before, "no command was published"


@pytest.mark.parametrize(("client_id", "role"), [(OWNER, "user"), (STRANGER, "admin")])
async def test_the_uploader_and_admins_may_change_it(
    facade: FacadeHarness, client_id: str, role: str
) -> None:
    before = await commands_for(facade.settings)
    response = await facade.http.patch(
        f"/api/v1/files/{RECORD.file_id}",
        headers=facade.token("metadata:write", client_id=client_id, role=role),
        json={"description": f"changed by {role}"},
    )
    assert response.status_code == 202, response.text
    assert await commands_for(facade.settings) == before + 1, "its command was published"
