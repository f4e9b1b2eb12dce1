"""The document registry in PostgreSQL: version numbers reserved by concurrent elements never
collide, a reservation is the file id's (a redelivery gets the same number), released numbers
are not stored, and what an element holds is synced into it at start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from events import RejectionReason
from storage_workers.documents import DocumentFile, PostgresDocuments
from storage_workers.handlers import DocumentLink, Reject

pytestmark = [pytest.mark.postgres]
OWNER = "sa_test_owner_00000000"


@pytest.fixture
async def registries(database_url: str) -> AsyncIterator[list[PostgresDocuments]]:
    """Four registries, as four elements' workers have them (a pool each)."""
    made = [PostgresDocuments(database_url) for _ in range(4)]
    yield made
    for registry in made:
        await registry.close()


async def test_concurrent_versions_get_distinct_consecutive_numbers(
    registries: list[PostgresDocuments],
) -> None:
    doc = uuid.uuid4()
    await registries[0].stored("se-a", [DocumentFile(doc, doc, 1, OWNER)])
    files = [uuid.uuid4() for _ in range(12)]
    links = await asyncio.gather(
        *(
            registries[i % 4].reserve(
                file_id=f, version_of=doc, client_id=OWNER, role="user", element_id=f"se-{i % 4}"
            )
            for i, f in enumerate(files)
        )
    )
    assert all(isinstance(link, DocumentLink) for link in links)
    numbers = sorted(link.version for link in links if isinstance(link, DocumentLink))
    assert numbers == list(range(2, 14))
    # Asked again (a redelivery, maybe to another element): the same number.
    again = await registries[3].reserve(
        file_id=files[0], version_of=doc, client_id=OWNER, role="user", element_id="se-x"
    )
    assert again == links[0]


async def test_released_numbers_and_deleted_documents(registries: list[PostgresDocuments]) -> None:
    registry = registries[0]
    doc = uuid.uuid4()
    await registry.sync("se-a", [DocumentFile(doc, doc, 1, OWNER)], [])
    rejected = uuid.uuid4()
    link = await registry.reserve(
        file_id=rejected, version_of=doc, client_id=OWNER, role="user", element_id="se-a"
    )
    assert link == DocumentLink(doc, 2)
    await registry.release([rejected])
    # A reserved version is not a stored one: nobody can name it as version_of.
    kept = uuid.uuid4()
    second = await registry.reserve(
        file_id=kept, version_of=doc, client_id=OWNER, role="user", element_id="se-a"
    )
    assert second == DocumentLink(doc, 2)
    unstored = await registry.reserve(
        file_id=uuid.uuid4(), version_of=kept, client_id=OWNER, role="user", element_id="se-a"
    )
    assert isinstance(unstored, Reject)
    assert unstored.reason is RejectionReason.UNKNOWN_DOCUMENT
    await registry.stored("se-b", [DocumentFile(kept, doc, 2, OWNER)])
    await registry.sync("se-a", [], [doc])
    third = await registry.reserve(
        file_id=uuid.uuid4(), version_of=kept, client_id=OWNER, role="user", element_id="se-a"
    )
    assert third == DocumentLink(doc, 3)
    await registry.deleted([kept])
    gone = await registry.reserve(
        file_id=uuid.uuid4(), version_of=doc, client_id=OWNER, role="user", element_id="se-a"
    )
    assert isinstance(gone, Reject)
    assert gone.reason is RejectionReason.DOCUMENT_DELETED
    stranger = await registry.reserve(
        file_id=uuid.uuid4(),
        version_of=doc,
        client_id="sa_test_other_11111111",
        role="user",
        element_id="se-a",
    )
    assert isinstance(stranger, Reject)
    assert stranger.reason is RejectionReason.UNKNOWN_DOCUMENT, "deleted or not, not revealed"
