"""A storage failure partway through a batch: what landed is kept and counted, the rest undone.

The backends are real (a local directory and SeaweedFS); a wrapper makes one call fail the way
a full disk or a dropped connection would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from events import FileStored, Outgoing, RejectionReason, new_event
from storage_workers.backends import BackendError, LocalStorage, StorageBackend, WrittenObject
from storage_workers.durability import Change, NewFile, commit_changes
from storage_workers.journal import Journal
from storage_workers.naming import sidecar_path
from tests.factories import stored_sidecar


class FailsOnce:
    """A real backend whose ``method`` raises on its ``nth`` call touching a key that ends in
    ``suffix``; every other call goes through."""

    def __init__(self, backend: StorageBackend, method: str, nth: int, suffix: str) -> None:
        self._backend = backend
        self._method = method
        self._left = nth
        self._suffix = suffix

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._backend, name)
        if name != self._method:
            return real

        def failing(first: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(first, WrittenObject):
                keys = [first.key]
            elif isinstance(first, str):
                keys = [first]
            else:
                keys = first = list(first)
            if any(key.endswith(self._suffix) for key in keys):
                self._left -= 1
                if self._left == 0:
                    raise BackendError(f"injected failure at {name} {keys[0]}")
            return real(first, *args, **kwargs)

        return failing


def new_file(staged: Path, content: bytes) -> Change:
    sidecar = stored_sidecar(content, element_id="se-1")
    staged.write_bytes(content)

    def rejected(reason: RejectionReason, detail: str) -> Outgoing:
        raise AssertionError(f"unexpected rejection {reason}: {detail}")

    fact = Outgoing(new_event(FileStored(file=sidecar.to_record()), source="test://"))
    operation = NewFile(sidecar, sidecar.encode(), lambda: [staged.read_bytes()], rejected, "{}")
    return Change(operation, fact)


@pytest.mark.parametrize(
    ("method", "nth", "suffix"),
    [
        ("publish_pending", 3, ".attr.json"),
        ("write_pending", 3, ".attr.json"),
        ("sync_dirs", 1, ".txt"),
    ],
    ids=["publishing a sidecar", "writing a sidecar", "syncing directories"],
)
async def test_a_failed_batch_keeps_what_landed_and_says_so(
    backend: StorageBackend, tmp_path: Path, method: str, nth: int, suffix: str
) -> None:
    failing: Any = FailsOnce(backend, method, nth, suffix)
    changes = [new_file(tmp_path / f"staged-{i}", f"file {i}".encode()) for i in range(6)]
    announced: list[Outgoing] = []

    async def announce(facts: list[Outgoing]) -> None:
        announced.extend(facts)

    async def acknowledge() -> None:
        raise AssertionError("a failed batch must not be acknowledged")

    with pytest.raises(BackendError, match="injected"):
        await commit_changes(
            failing, Journal(failing), changes, announce=announce, acknowledge=acknowledge
        )

    assert announced == []
    for change in changes:
        path = change.data_path
        landed = backend.stat(sidecar_path(path)) is not None
        assert change.done is landed, f"{path}: done={change.done}, sidecar there={landed}"
        if landed:
            staged = tmp_path / f"staged-{changes.index(change)}"
            assert backend.read_bytes(path) == staged.read_bytes()
        else:
            assert backend.stat(path) is None, f"{path} was left without its sidecar"
    assert Journal(backend).pending() == []
    if method == "sync_dirs":
        assert all(change.done for change in changes)
    elif method == "publish_pending" and isinstance(backend, LocalStorage):
        assert [c.done for c in changes] == [True, True, False, False, False, False]
