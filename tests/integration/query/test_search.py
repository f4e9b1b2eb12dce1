"""Facts in, searches out: full text in English and Russian, filters, sorts, pages, the cache."""
# ruff: noqa: RUF001  (Russian text is the point of these tests)

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from base.settings import Settings
from events import DeletionReason, FileDeleted, FileStored, MetadataUpdated, RetentionPolicy
from tests.helpers import wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FacadeHarness,
    FactPublisher,
    facade_harness,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
DAY = timedelta(days=1)

FILES = [
    make_record(
        filename="annual_report_2024.pdf",
        description="The annual financial report of running operations",
        tags=["finance"],
        custom={"department": "accounting", "pages": 12},
        username="alice",
        size=1000,
        created=BASE_TIME,
    ),
    make_record(
        filename="отчёт_о_продажах.docx",
        description="Годовой отчёт о продажах и бегущих проектах",
        tags=["продажи"],
        custom={"department": "sales"},
        username="boris",
        size=5000,
        created=BASE_TIME + DAY,
    ),
    make_record(
        filename="cats_and_dogs.txt",
        description="Running dogs chase cats",
        tags=["pets", "fun"],
        username="alice",
        size=10,
        created=BASE_TIME + 2 * DAY,
    ),
    make_record(
        filename="dog_training.md",
        description="How to train dogs",
        tags=["pets"],
        username="carol",
        size=300,
        created=BASE_TIME + 3 * DAY,
        element_id="se-02",
        retention=RetentionPolicy.TEMPORARY,
    ),
    make_record(
        filename="meeting notes.txt",
        description="Notes about the quarterly budget meeting",
        custom={"pages": "12"},
        username="boris",
        size=700,
        created=BASE_TIME + 4 * DAY,
    ),
    make_record(
        filename="budget_2025.xlsx", username="dave", size=2000, created=BASE_TIME + 5 * DAY
    ),
]
DELETED = make_record(filename="secret plans.txt", description="budget dogs", created=BASE_TIME)


@pytest.fixture(scope="module")
async def facade(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[FacadeHarness]:
    async with (
        facade_harness(topics, redis_namespace, staging="local") as harness,
        FactPublisher(topics) as pub,
    ):
        await pub.publish([FileStored(file=f) for f in [*FILES, DELETED]])
        await pub.publish(
            [
                FileDeleted(
                    file_id=DELETED.file_id,
                    element_id="se-01",
                    storage_path=DELETED.storage_path,
                    reason=DeletionReason.REQUESTED,
                    deleted_by="ops",
                    deleted_at=BASE_TIME + DAY,
                )
            ]
        )

        async def indexed() -> bool:
            response = await harness.get("/api/v1/search", params={"limit": 100})
            return response.status_code == 200 and len(response.json()["items"]) == len(FILES)

        await wait_until(indexed, timeout=30)

        async def tombstoned() -> bool:
            response = await harness.get(f"/api/v1/files/{DELETED.file_id}")
            return response.status_code == 410

        await wait_until(tombstoned, timeout=30)
        yield harness


async def names(facade: FacadeHarness, **params: Any) -> list[str]:
    response = await facade.get("/api/v1/search", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["original_filename"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("run", {"annual_report_2024.pdf", "cats_and_dogs.txt"}),  # English stemming: running
        ("продажа", {"отчёт_о_продажах.docx"}),  # Russian stemming: продажах
        ("бегущий проект", {"отчёт_о_продажах.docx"}),
        ('"financial report"', {"annual_report_2024.pdf"}),  # a phrase
        ('"report financial"', set()),  # words present, but not as this phrase
        ("dogs -cats", {"dog_training.md"}),  # an exclusion
        ("cats or budget", {"cats_and_dogs.txt", "meeting notes.txt", "budget_2025.xlsx"}),
        ("fun", {"cats_and_dogs.txt"}),  # tags are searchable
        ("accounting", {"annual_report_2024.pdf"}),  # so are custom attribute values
        ("plans", set()),  # deleted files never show up
        # A filename as typed: punctuation inside a word splits it, in the index and the query.
        ("annual_report_2024.pdf", {"annual_report_2024.pdf"}),
        ("budget_2025.xlsx", {"budget_2025.xlsx"}),
        ("notes.txt", {"meeting notes.txt"}),
        ("отчёт_о_продажах", {"отчёт_о_продажах.docx"}),
        ("financial-report", {"annual_report_2024.pdf"}),  # hyphenated, like zeppelin-log
        ('"cats_and_dogs.txt"', {"cats_and_dogs.txt"}),
        ("pets -cats_and_dogs.txt", {"dog_training.md"}),  # excludes the whole name
        ("budget_2025.xlsx or dog_training.md", {"budget_2025.xlsx", "dog_training.md"}),
        ("annual_report_2025.pdf", set()),  # all of the name's words, in order
    ],
)
async def test_full_text(facade: FacadeHarness, query: str, expected: set[str]) -> None:
    assert set(await names(facade, q=query)) == expected


async def test_relevance_weighs_filename_over_description(facade: FacadeHarness) -> None:
    response = await facade.get("/api/v1/search", params={"q": "budget"})
    items = response.json()["items"]
    assert [i["original_filename"] for i in items] == ["budget_2025.xlsx", "meeting notes.txt"]
    assert items[0]["rank"] > items[1]["rank"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"extension": "txt"}, {"cats_and_dogs.txt", "meeting notes.txt"}),
        ({"extension": "PDF,md"}, {"annual_report_2024.pdf", "dog_training.md"}),
        ({"tag": "pets"}, {"cats_and_dogs.txt", "dog_training.md"}),
        ({"tags": "pets,fun"}, {"cats_and_dogs.txt"}),
        ({"username": "alice"}, {"annual_report_2024.pdf", "cats_and_dogs.txt"}),
        (
            {"size_min": "500", "size_max": "2000"},
            {"annual_report_2024.pdf", "meeting notes.txt", "budget_2025.xlsx"},
        ),
        (
            {
                "created_from": (BASE_TIME + DAY).isoformat(),
                "created_to": (BASE_TIME + 3 * DAY).isoformat(),
            },
            {"отчёт_о_продажах.docx", "cats_and_dogs.txt", "dog_training.md"},
        ),
        ({"element": "se-02"}, {"dog_training.md"}),
        ({"retention_policy": "temporary"}, {"dog_training.md"}),
        ({"attr.department": "sales"}, {"отчёт_о_продажах.docx"}),
        ({"attr.pages": "12"}, {"annual_report_2024.pdf", "meeting notes.txt"}),
        ({"filename": "REPORT"}, {"annual_report_2024.pdf"}),
        ({"filename": " "}, {"meeting notes.txt"}),
        ({"language": "russian"}, {"отчёт_о_продажах.docx"}),
        ({"q": "dogs", "username": "carol"}, {"dog_training.md"}),
    ],
)
async def test_filters(facade: FacadeHarness, params: dict[str, str], expected: set[str]) -> None:
    assert set(await names(facade, **params)) == expected


async def test_sorts(facade: FacadeHarness) -> None:
    by_size = sorted(FILES, key=lambda f: f.file_size)
    assert await names(facade, sort="file_size") == [f.original_filename for f in by_size]
    assert await names(facade, sort="-file_size") == [f.original_filename for f in by_size][::-1]
    newest_first = sorted(FILES, key=lambda f: f.created_at, reverse=True)
    assert await names(facade) == [f.original_filename for f in newest_first]
    assert (
        await names(facade, sort="created_at") == [f.original_filename for f in newest_first][::-1]
    )
    by_name = await names(facade, sort="filename")
    assert len(by_name) == len(FILES)


@pytest.mark.parametrize("sort", ["file_size", "-created_at", "filename", "relevance"])
async def test_pages_cover_every_result_once(facade: FacadeHarness, sort: str) -> None:
    params: dict[str, str] = {"sort": sort, "limit": "2"}
    if sort == "relevance":
        params["q"] = "budget or dogs or report or notes"
    everything = await names(facade, **{**params, "limit": "100"})
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        response = await facade.get(
            "/api/v1/search", params={**params, **({"cursor": cursor} if cursor else {})}
        )
        body = response.json()
        seen += [i["original_filename"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert len(set(seen)) == len(seen)


async def test_a_cursor_from_another_search_is_refused(facade: FacadeHarness) -> None:
    first = await facade.get("/api/v1/search", params={"limit": "1"})
    cursor = first.json()["next_cursor"]
    other = await facade.get("/api/v1/search", params={"limit": "1", "cursor": cursor, "tag": "x"})
    assert other.status_code == 400
    assert "different search" in other.json()["detail"]


async def test_new_facts_reach_cached_searches(facade: FacadeHarness) -> None:
    query = {"q": "platypus"}
    first = await facade.get("/api/v1/search", params=query)
    assert first.json()["items"] == []
    again = await facade.get("/api/v1/search", params=query)
    assert again.headers["X-Cache"] == "hit"
    target = FILES[4]
    async with FactPublisher(facade.settings) as pub:
        await pub.publish(
            [
                MetadataUpdated(
                    file=target.model_copy(
                        update={
                            "version": 2,
                            "description": "A platypus swam by",
                            "updated_at": target.updated_at + DAY,
                        }
                    ),
                    updated_by="ops",
                )
            ]
        )

    async def found() -> bool:
        return await names(facade, **query) == ["meeting notes.txt"]

    await wait_until(found, timeout=20)
    assert await names(facade, q="quarterly") == []
    meta = await facade.get(f"/api/v1/files/{target.file_id}")
    assert meta.json()["version"] == 2
    assert meta.json()["description"] == "A platypus swam by"


async def test_metadata_is_the_sidecar_and_deleted_files_are_gone(facade: FacadeHarness) -> None:
    record = FILES[0]
    response = await facade.get(f"/api/v1/files/{record.file_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["schema_version"] == "2.0"
    assert body["checksum"] == record.checksum
    assert body["custom_attributes"] == {"department": "accounting", "pages": 12}
    gone = await facade.get(f"/api/v1/files/{DELETED.file_id}")
    assert gone.status_code == 410
    assert "deleted" in gone.json()["detail"]
    missing = await facade.get("/api/v1/files/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


async def test_upload_status_of_a_deleted_file_says_deleted_when_and_by_whom(
    facade: FacadeHarness,
) -> None:
    response = await facade.get(f"/api/v1/uploads/{DELETED.file_id}", "files:write")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "deleted"
    assert body["deleted_by"] == "ops"
    assert body["deleted_at"].startswith((BASE_TIME + DAY).isoformat()[:19])
    assert body["deletion_reason"] == "requested"
    assert "links" not in body
    stored = await facade.get(f"/api/v1/uploads/{FILES[0].file_id}", "files:write")
    assert stored.json()["status"] == "stored"
    assert "deleted_at" not in stored.json()
