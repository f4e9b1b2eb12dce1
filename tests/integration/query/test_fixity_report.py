"""`artstore fixity run` on demand, then the report and `query check` from the index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from base.settings import Settings
from consumers.check import check_element
from consumers.fixity import fixity_report, run_fixity
from events import ElementRegistered, FileStored, Mode
from storage_workers.backends import LocalStorage
from storage_workers.naming import sidecar_path
from tests.helpers import wait_until
from tests.integration.query.support import BASE_TIME, FacadeHarness, FactPublisher, facade_harness
from tests.integration.storage.fixity_faults import store_files

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]
ELEMENT = "se-report"


@pytest.fixture(scope="module")
async def element(
    topics: Settings, migrated: Settings, redis_namespace: str
) -> AsyncIterator[tuple[FacadeHarness, LocalStorage, list]]:
    backend = LocalStorage(Path(topics.data_dir) / ELEMENT)
    files = store_files(backend, ELEMENT, 12, seed=7)
    async with facade_harness(topics, redis_namespace, staging="local") as harness:
        async with FactPublisher(topics) as pub:
            await pub.publish(
                [
                    ElementRegistered(
                        element_id=ELEMENT,
                        mode=Mode.RW,
                        backend=LocalStorage.describe(backend),  # type: ignore[arg-type]
                        priority=1,
                        capacity_bytes=10**9,
                        free_bytes=10**9,
                        worker="tests",
                        started_at=BASE_TIME,
                    ),
                    *(FileStored(file=f.to_record()) for f in files),
                ]
            )

        async def indexed() -> bool:
            response = await harness.get("/api/v1/search", params={"element": ELEMENT})
            return len(response.json()["items"]) == len(files)

        await wait_until(indexed, timeout=30)
        yield harness, backend, files


async def test_a_run_is_reported_with_counts_that_add_up_and_shows_in_query_check(
    element: tuple[FacadeHarness, LocalStorage, list], topics: Settings
) -> None:
    harness, backend, files = element
    flipped, unsidecared = files[0], files[1]
    data = bytearray(backend.read_bytes(flipped.storage_path))
    data[0] ^= 0x80
    backend.write_atomic(flipped.storage_path, bytes(data))
    backend.delete(sidecar_path(unsidecared.storage_path))
    backend.write_atomic("2026/11/01/00/stray.bin", b"not ours")

    checked = await run_fixity(topics, ELEMENT)
    assert (checked.checked, checked.sound, checked.failed, checked.unreadable) == (13, 10, 3, 0)

    async def reported() -> bool:
        report = await fixity_report(topics, element_id=ELEMENT)
        return len(report.passes) == 1 and len(report.findings) == 3

    await wait_until(reported, timeout=30, message="the pass and its findings are indexed")
    report = await fixity_report(topics, element_id=ELEMENT)
    totals = report.totals
    assert totals["checked"] == totals["sound"] + totals["failed"] + totals["unreadable"] == 13
    assert totals["failed"] == len(report.findings) == 3
    assert report.findings_not_indexed == 0
    assert {f["kind"] for f in report.findings} == {
        "checksum_mismatch",
        "sidecar_missing",
        "stray_file",
    }
    assert {f["file_id"] for f in report.open_failures} == {
        str(flipped.file_id),
        str(unsidecared.file_id),
    }
    differences = await check_element(topics, ELEMENT)
    fixity = {d.file_id: d.kind for d in differences if d.kind.startswith("fixity_")}
    assert fixity == {
        str(flipped.file_id): "fixity_failed",
        str(unsidecared.file_id): "fixity_failed",
    }

    # Repaired from a copy: the next run announces it sound again, and the index follows.
    backend.write_atomic(flipped.storage_path, _original(data))
    again = await run_fixity(topics, ELEMENT, file_id=flipped.file_id)
    assert (again.scope, again.sound, again.failed) == ("file", 1, 0)

    async def recovered() -> bool:
        report = await fixity_report(topics, element_id=ELEMENT)
        return str(flipped.file_id) not in {f["file_id"] for f in report.open_failures}

    await wait_until(recovered, timeout=30, message="the recovery is indexed")
    response = await harness.get(f"/api/v1/files/{flipped.file_id}/content")
    assert response.status_code == 200


def _original(flipped: bytearray) -> bytes:
    restored = bytearray(flipped)
    restored[0] ^= 0x80
    return bytes(restored)
