"""A local element's pass lends files to helper processes: they can only prove files sound;
every fault is still found, with its confirmations, by the auditor itself, also when a helper
dies, and a pass whose reads are bounded keeps to one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage_workers.backends import LocalStorage
from storage_workers.catalogue import Catalogue
from storage_workers.fixity import Auditor, KnownFile, ReadBudget, plan_items
from storage_workers.fixity.checks import WHOLE_READ, proves_sound
from storage_workers.fixity.processes import Pieces, helpers
from storage_workers.naming import sidecar_path
from tests.integration.storage.fixity_faults import store_files, store_files_of_size
from tests.integration.storage.test_fixity_faults import audit, check_findings, planted


def test_a_helper_answers_true_only_for_a_file_whose_sidecar_and_data_are_as_recorded(
    tmp_path: Path,
) -> None:
    backend = LocalStorage(tmp_path / "se-helper")
    files = store_files(backend, "se-helper", 5, seed=5)
    catalogue = Catalogue.load(backend, "se-helper")
    flipped, cut, no_sidecar, edited = (f.storage_path for f in files[1:])
    data = backend.read_bytes(flipped)
    backend.write_atomic(flipped, bytes([data[0] ^ 1]) + data[1:])
    backend.write_atomic(cut, backend.read_bytes(cut)[:-1])
    backend.delete(sidecar_path(no_sidecar))
    backend.write_atomic(sidecar_path(edited), backend.read_bytes(sidecar_path(edited)) + b" ")
    auditor = Auditor(backend, "se-helper", catalogue.get)
    expected = []
    for item in plan_items(backend.list_keys(), catalogue.entries()):
        found = auditor.expected(item)
        assert found is not None
        expected.append(found[1])
    (helper,) = helpers(1)
    pieces = Pieces([[i] for i in range(len(expected))])
    answered = helper.prove(str(backend.root), pieces, expected)
    sound = {expected[i][0] for piece, answer in answered for i in piece if answer == [True]}
    assert sound == {files[0].storage_path}
    assert sorted(i for piece, _ in answered for i in piece) == list(range(len(expected)))


@pytest.mark.parametrize("size", [64 * 1024, WHOLE_READ, WHOLE_READ + 1])
def test_one_read_proves_only_the_very_bytes_recorded(tmp_path: Path, size: int) -> None:
    """Small files are read whole in one read, larger ones streamed: either way a byte
    appended, one flipped at the end, or a byte more in the sidecar is not proved sound."""
    backend = LocalStorage(tmp_path / "se-one-read")
    files = store_files_of_size(backend, "se-one-read", 4, size)
    catalogue = Catalogue.load(backend, "se-one-read")
    auditor = Auditor(backend, "se-one-read", catalogue.get)
    expected = {}
    for entry in catalogue.entries():
        found = auditor.expected(KnownFile(entry))
        assert found is not None
        expected[entry.storage_path] = found[1]
    sound, grown, flipped, edited = (f.storage_path for f in files)
    with open(backend.path(grown), "ab") as handle:
        handle.write(b"x")
    data = backend.read_bytes(flipped)
    backend.write_atomic(flipped, data[:-1] + bytes([data[-1] ^ 1]))
    backend.write_atomic(sidecar_path(edited), backend.read_bytes(sidecar_path(edited)) + b"\n")
    budget = ReadBudget(1e12, 1e9)
    proved = {path: proves_sound(backend, found, budget) for path, found in expected.items()}
    assert proved == {sound: True, grown: False, flipped: False, edited: False}


async def test_every_fault_is_found_by_a_pass_spread_over_a_helper(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "se-spread")
    element, catalogue = planted(local, "se-spread", seed=6)
    found = await audit(local, "se-spread", catalogue, processes=1)
    check_findings(element, found)  # each finding confirmed: 4 reads


async def test_a_helper_that_died_is_replaced_and_its_files_are_checked_here(
    tmp_path: Path,
) -> None:
    local = LocalStorage(tmp_path / "se-died")
    element, catalogue = planted(local, "se-died", seed=7)
    (helper,) = helpers(1)
    helper.process.kill()
    helper.process.join(timeout=60)
    auditor = Auditor(local, "se-died", catalogue.get)
    files = [auditor.expected(KnownFile(entry)) for entry in catalogue.entries()[:64]]
    expected = [found[1] for found in files if found is not None]
    pieces = Pieces([list(range(32)), list(range(32, 64))])
    answered = helper.prove(str(local.root), pieces, expected)
    assert helper.broken
    assert all(answer is None for _, answer in answered), "nothing proved by a dead helper"
    left = [i for piece in iter(pieces.last, None) for i in piece]
    lent = [i for piece, _ in answered for i in piece]
    assert sorted(lent + left) == list(range(64)), "every piece answered or left to check"
    found = await audit(local, "se-died", catalogue, processes=1)
    check_findings(element, found)
    (replaced,) = helpers(1)
    assert replaced is not helper
    assert replaced.process.is_alive()


async def test_a_bounded_pass_keeps_to_one_process(tmp_path: Path) -> None:
    local = LocalStorage(tmp_path / "se-bounded")
    element, catalogue = planted(local, "se-bounded", seed=8)
    found = await audit(local, "se-bounded", catalogue, processes=1, budget=ReadBudget(1e12, 1e9))
    check_findings(element, found)
    assert found.helped == 0
