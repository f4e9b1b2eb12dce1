"""A local element whose directory goes away (a volume unmounted, a disk gone) is away, not
empty: nothing makes its directory again, reads say the element is away rather than that its
files are missing, the probe says so until the very directory is back, and the auditor counts
its files unreadable, never failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from events import FixityOutcome
from storage_workers.backends import BackendError, LocalStorage, ObjectMissing
from storage_workers.catalogue import Catalogue
from storage_workers.fixity import Auditor, AuditPolicy, plan_items
from tests.integration.storage.fixity_faults import store_files


def test_a_directory_gone_is_away_and_is_not_made_again(tmp_path: Path) -> None:
    root = tmp_path / "se-away"
    backend = LocalStorage(root)
    backend.write_atomic("2026/11/a.bin", b"kept")
    backend.probe()
    unmounted = tmp_path / "unmounted"
    root.rename(unmounted)
    with pytest.raises(BackendError, match="not there"):
        backend.probe()
    with pytest.raises(BackendError, match="not there"):
        backend.write_atomic("2026/12/b.bin", b"new")
    assert not root.exists(), "a write made the element's directory again"
    with pytest.raises(BackendError):
        backend.read_bytes("2026/11/a.bin")
    with pytest.raises(BackendError):
        backend.digest("2026/11/a.bin")
    with pytest.raises(BackendError):
        backend.stat("2026/11/a.bin")
    with pytest.raises(BackendError):
        list(backend.list_keys())
    root.mkdir()  # an empty directory in its place: not this element
    with pytest.raises(BackendError, match="not the one opened"):
        backend.probe()
    with pytest.raises(BackendError):
        backend.read_bytes("2026/11/a.bin")
    root.rmdir()
    unmounted.rename(root)  # the volume is back
    backend.probe()
    assert backend.read_bytes("2026/11/a.bin") == b"kept"
    with pytest.raises(ObjectMissing):
        backend.read_bytes("2026/11/none.bin")


def test_a_reader_does_not_make_a_missing_element_directory(tmp_path: Path) -> None:
    backend = LocalStorage(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(BackendError, match="not there"):
        backend.read_bytes("2026/11/a.bin")


def test_the_auditor_counts_an_element_away_unreadable_not_failed(tmp_path: Path) -> None:
    root = tmp_path / "se-gone"
    backend = LocalStorage(root)
    store_files(backend, "se-gone", 5, seed=5)
    catalogue = Catalogue.load(backend, "se-gone")
    items = plan_items(backend.list_keys(), catalogue.entries())
    root.rename(tmp_path / "elsewhere")
    auditor = Auditor(backend, "se-gone", catalogue.get, policy=AuditPolicy(read_attempts=1))
    verdicts = auditor.check_all(items)
    known = [v for v in verdicts if v.file_id is not None]
    assert len(known) == 5
    assert {v.outcome for v in verdicts} == {FixityOutcome.UNREADABLE}
    assert all("not there" in (v.detail or "") for v in verdicts)
