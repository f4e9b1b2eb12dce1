"""Over 1,000 faults planted across a local and an S3 element are each found, with the right
kind, and nothing else is reported, while the S3 element's reads fail now and then."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from events import FixityChecked, FixityFailed, FixityRecovered
from storage_workers.backends import LocalStorage, StorageBackend
from storage_workers.catalogue import Catalogue
from storage_workers.fixity import (
    Announcer,
    Auditor,
    AuditPolicy,
    FixityState,
    PassRunner,
    ReadBudget,
    StateStore,
    plan_items,
)
from storage_workers.naming import sidecar_path
from tests.integration.storage.conftest import s3_storage
from tests.integration.storage.fixity_faults import (
    EXPECTED_KIND,
    FAULT_MIX,
    SOUND_FILES,
    FlakyStorage,
    K,
    PlantedElement,
    plant_faults,
    store_files,
)

pytestmark = [pytest.mark.s3]


class Collected:
    def __init__(self) -> None:
        self.facts: list[BaseModel] = []
        self.helped = 0
        """Files the auditor's helper processes proved sound."""

    async def __call__(self, facts: Any) -> None:
        self.facts.extend(facts)

    def of(self, model: type) -> list[Any]:
        return [f for f in self.facts if isinstance(f, model)]


async def audit(
    backend: StorageBackend,
    element_id: str,
    catalogue: Catalogue,
    *,
    processes: int | None = None,
    budget: ReadBudget | None = None,
) -> Collected:
    collected = Collected()
    auditor = Auditor(
        backend, element_id, catalogue.get, policy=AuditPolicy(confirmations=3), budget=budget
    )
    runner = PassRunner(
        auditor,
        Announcer(element_id, f"test auditor {element_id}"),
        collected,
        store=StateStore(backend),
        clock=lambda: datetime.now(UTC),
        processes=processes,
    )
    try:
        items = plan_items(backend.list_keys(), catalogue.entries())
        await runner.run(items, StateStore(backend).load())
    finally:
        runner.close()
    collected.helped = runner.helped
    return collected


def planted(
    backend: StorageBackend, element_id: str, seed: int
) -> tuple[PlantedElement, Catalogue]:
    files = sum(FAULT_MIX.values()) - FAULT_MIX["stray_file"] - FAULT_MIX["orphan_data"]
    element = PlantedElement(
        element_id, store_files(backend, element_id, files + SOUND_FILES, seed)
    )
    catalogue = Catalogue.load(backend, element_id)  # what the worker knew before the damage
    plant_faults(backend, element, seed)
    return element, catalogue


def check_findings(element: PlantedElement, collected: Collected) -> FixityChecked:
    found: dict[str, set[Any]] = {}
    for failure in collected.of(FixityFailed):
        found.setdefault(failure.storage_path, set()).add(failure.kind)
    expected = {key: {kind} for key, kind in element.faults.items()}
    missed = {k: v for k, v in expected.items() if k not in found}
    wrong = {k: (found[k], v) for k, v in expected.items() if k in found and found[k] != v}
    false_alarms = {k: v for k, v in found.items() if k not in expected}
    assert not missed, f"{len(missed)} faults not found, e.g. {list(missed.items())[:3]}"
    assert not wrong, f"{len(wrong)} found with the wrong kind, e.g. {list(wrong.items())[:3]}"
    assert not false_alarms, f"{len(false_alarms)} false alarms: {list(false_alarms.items())[:3]}"
    (checked,) = collected.of(FixityChecked)
    assert checked.complete
    assert checked.scope == "element"
    assert checked.checked == checked.sound + checked.failed + checked.unreadable
    assert checked.unreadable == 0, checked.unreadable_files[:3]
    assert checked.failed == len(element.faults)
    assert checked.sound == SOUND_FILES
    want = Counter(EXPECTED_KIND[fault] for fault, n in FAULT_MIX.items() for _ in range(n))
    assert Counter(checked.findings) == want
    stray = {K.STRAY_FILE, K.ORPHAN_DATA}
    assert all(f.attempts == 4 for f in collected.of(FixityFailed) if f.kind not in stray)
    return checked


async def test_every_planted_fault_is_found_with_its_kind_and_nothing_else(
    tmp_path: Path,
) -> None:
    local = LocalStorage(tmp_path / "se-local")
    local_element, local_catalogue = planted(local, "se-local", seed=1)
    with s3_storage() as s3:
        s3_element, s3_catalogue = planted(s3, "se-s3", seed=2)
        flaky = FlakyStorage(s3)
        s3_found = await audit(flaky, "se-s3", s3_catalogue)  # type: ignore[arg-type]
        assert flaky.injected > 100, "the S3 element's reads were to fail now and then"
    local_found = await audit(local, "se-local", local_catalogue)
    assert len(local_element.faults) + len(s3_element.faults) >= 1000
    check_findings(local_element, local_found)
    check_findings(s3_element, s3_found)


async def test_a_repaired_file_announces_that_it_is_sound_again(tmp_path: Path) -> None:
    backend = LocalStorage(tmp_path / "se-repair")
    (sidecar,) = store_files(backend, "se-repair", 1, seed=3)
    catalogue = Catalogue.load(backend, "se-repair")
    good = backend.read_bytes(sidecar.storage_path)
    backend.write_atomic(sidecar.storage_path, good[:-1])
    first = await audit(backend, "se-repair", catalogue)
    assert [f.kind.value for f in first.of(FixityFailed)] == ["size_mismatch"]
    backend.write_atomic(sidecar.storage_path, good)  # restored from a backup
    second = await audit(backend, "se-repair", catalogue)
    (recovered,) = second.of(FixityRecovered)
    assert recovered.file_id == sidecar.file_id
    assert recovered.previous_kind == K.SIZE_MISMATCH
    assert second.of(FixityFailed) == []
    third = await audit(backend, "se-repair", catalogue)
    assert third.of(FixityRecovered) == [], "announced once, not at every pass"


async def test_an_interrupted_pass_resumes_where_it_stopped(tmp_path: Path) -> None:
    backend = LocalStorage(tmp_path / "se-resume")
    files = store_files(backend, "se-resume", 700, seed=4)
    catalogue = Catalogue.load(backend, "se-resume")
    ordered = sorted(files, key=lambda f: f.storage_path.split("/"))
    for damaged in (ordered[10], ordered[300]):  # one finding in each of the first two chunks
        backend.delete(sidecar_path(damaged.storage_path))
    calls = 0

    async def crashes_on_second_chunk(facts: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the broker went away")

    auditor = Auditor(backend, "se-resume", catalogue.get)
    runner = PassRunner(
        auditor,
        Announcer("se-resume", "test"),
        crashes_on_second_chunk,
        store=StateStore(backend),
        clock=lambda: datetime.now(UTC),
        checkpoint_s=0,  # a checkpoint after every chunk
    )
    items = plan_items(backend.list_keys(), catalogue.entries())
    with pytest.raises(ConnectionError):
        await runner.run(items, StateStore(backend).load())
    runner.close()
    stored = StateStore(backend).load()
    assert stored.current is not None
    assert stored.current.tally.checked == 256
    resumed = await audit(backend, "se-resume", catalogue)
    (checked,) = resumed.of(FixityChecked)
    assert checked.pass_id == stored.current.pass_id
    assert (checked.checked, checked.failed, checked.sound) == (700, 2, 698)
    assert len(resumed.of(FixityFailed)) == 1, "the chunk announced before the crash is not redone"
    assert StateStore(backend).load().current is None
    assert isinstance(StateStore(backend).load(), FixityState)
