"""Downloads through the element's backend: ranges, conditionals, archived elements, S3."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from artstore.stack import StackEnv
from base.settings import Settings
from events import ElementRegistered, FileStored, LocalBackend, Mode, ModeChanged, S3Backend
from tests.helpers import s3_client, wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FacadeHarness,
    FactPublisher,
    facade_harness,
    make_record,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
CONTENT = os.urandom(1000)
NAME = "Отчёт «итоги» 2024.pdf"
LOCAL = make_record(filename=NAME, content=CONTENT, element_id="se-local")
ARCHIVED = make_record(filename="old.bin", content=b"offline", element_id="se-ar")
MISSING = make_record(filename="lost.bin", content=b"lost", element_id="se-local")
ON_S3 = make_record(filename="cloud.bin", content=CONTENT, element_id="se-s3")
ETAG = f'"{LOCAL.checksum}"'


def _registered(
    element_id: str, backend: LocalBackend | S3Backend, mode: Mode
) -> ElementRegistered:
    return ElementRegistered(
        element_id=element_id,
        mode=mode,
        backend=backend,
        priority=1,
        capacity_bytes=10**9,
        free_bytes=10**9,
        worker="tests",
        started_at=BASE_TIME,
    )


@pytest.fixture(scope="module")
async def facade(
    topics: Settings, migrated: Settings, redis_namespace: str, stack: StackEnv
) -> AsyncIterator[FacadeHarness]:
    root = Path(topics.data_dir) / "se-local"
    for record, data in ((LOCAL, CONTENT), (ARCHIVED, b"offline")):
        path = root / record.storage_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    s3 = s3_client(stack)
    s3.put_object(
        topics.s3_bucket, f"elements/se-s3/{ON_S3.storage_path}", io.BytesIO(CONTENT), len(CONTENT)
    )
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        async with FactPublisher(topics) as pub:
            await pub.publish(
                [
                    _registered("se-local", LocalBackend(root=str(root)), Mode.RW),
                    _registered("se-ar", LocalBackend(root=str(root)), Mode.RO),
                    _registered(
                        "se-s3",
                        S3Backend(
                            endpoint=topics.s3_endpoint,
                            bucket=topics.s3_bucket,
                            prefix="elements/se-s3/",
                            region=topics.s3_region,
                        ),
                        Mode.RW,
                    ),
                    ModeChanged(
                        element_id="se-ar",
                        from_mode=Mode.RO,
                        to_mode=Mode.AR,
                        changed_by="ops",
                        reason="to tape",
                        changed_at=BASE_TIME + timedelta(minutes=1),
                    ),
                    *(FileStored(file=r) for r in (LOCAL, ARCHIVED, MISSING, ON_S3)),
                ]
            )

        async def ready() -> bool:
            response = await harness.get("/api/v1/search", params={"limit": 10})
            elements = await harness.get("/api/v1/elements")
            modes = {e["element_id"]: e["mode"] for e in elements.json()["items"]}
            return len(response.json()["items"]) == 4 and modes.get("se-ar") == "ar"

        await wait_until(ready, timeout=30)
        yield harness


def url(record: object) -> str:
    return f"/api/v1/files/{record.file_id}/content"  # type: ignore[attr-defined]


async def test_whole_content_with_etag_and_disposition(facade: FacadeHarness) -> None:
    response = await facade.get(url(LOCAL))
    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["ETag"] == ETAG
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Length"] == "1000"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in disposition
    assert disposition.encode("latin-1")  # the header itself stays ASCII


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=-100", 900, 999),
        ("bytes=900-", 900, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=999-999", 999, 999),
    ],
)
async def test_single_ranges(facade: FacadeHarness, header: str, start: int, end: int) -> None:
    response = await facade.get(url(LOCAL), headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/1000"
    assert response.content == CONTENT[start : end + 1]
    assert response.headers["Content-Length"] == str(end - start + 1)


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
async def test_unsatisfiable_ranges_are_416(facade: FacadeHarness, header: str) -> None:
    response = await facade.get(url(LOCAL), headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */1000"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=abc", "items=0-5", "bytes=5-1"])
async def test_ranges_we_may_ignore_send_everything(facade: FacadeHarness, header: str) -> None:
    response = await facade.get(url(LOCAL), headers={"Range": header})
    assert response.status_code == 200
    assert response.content == CONTENT


async def test_conditional_requests(facade: FacadeHarness) -> None:
    for tag in (ETAG, f"W/{ETAG}", f'"nope", {ETAG}', "*"):
        response = await facade.get(url(LOCAL), headers={"If-None-Match": tag})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["ETag"] == ETAG
    assert (await facade.get(url(LOCAL), headers={"If-None-Match": '"nope"'})).status_code == 200
    same = await facade.get(url(LOCAL), headers={"Range": "bytes=0-9", "If-Range": ETAG})
    assert same.status_code == 206
    changed = await facade.get(url(LOCAL), headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert changed.status_code == 200
    assert changed.content == CONTENT
    assert (await facade.get(url(LOCAL), headers={"If-Match": '"old"'})).status_code == 412


async def test_if_range_with_the_last_modified_date_gets_the_range(facade: FacadeHarness) -> None:
    full = await facade.get(url(LOCAL))
    last_modified = full.headers["Last-Modified"]
    assert parsedate_to_datetime(last_modified) == BASE_TIME  # when the content was stored
    same = await facade.get(url(LOCAL), headers={"Range": "bytes=0-9", "If-Range": last_modified})
    assert same.status_code == 206
    assert same.content == CONTENT[:10]
    earlier = format_datetime(BASE_TIME - timedelta(seconds=1), usegmt=True)
    other = await facade.get(url(LOCAL), headers={"Range": "bytes=0-9", "If-Range": earlier})
    assert other.status_code == 200
    assert other.content == CONTENT


async def test_head_sends_headers_only(facade: FacadeHarness) -> None:
    response = await facade.http.head(url(LOCAL), headers=facade.token("files:read"))
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "1000"
    assert response.headers["ETag"] == ETAG
    assert response.content == b""


async def test_archived_element_answers_a_clear_conflict(facade: FacadeHarness) -> None:
    response = await facade.get(url(ARCHIVED))
    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "archived"
    assert "archived" in body["detail"]
    # The metadata stays readable.
    assert (await facade.get(f"/api/v1/files/{ARCHIVED.file_id}")).status_code == 200


async def test_content_missing_from_the_element_is_a_clear_404(facade: FacadeHarness) -> None:
    response = await facade.get(url(MISSING))
    assert response.status_code == 404
    assert "missing from element se-local" in response.json()["detail"]


@pytest.mark.s3
async def test_s3_element_ranges(facade: FacadeHarness) -> None:
    whole = await facade.get(url(ON_S3))
    assert whole.status_code == 200
    assert whole.content == CONTENT
    tail = await facade.get(url(ON_S3), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == CONTENT[-10:]
    assert tail.headers["Content-Range"] == "bytes 990-999/1000"
