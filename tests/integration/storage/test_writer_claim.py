"""One writer per element: a second worker is refused, on a local element and in S3."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage_workers.backends import LocalStorage, StorageBackend
from storage_workers.writer_claim import (
    LEASE_KEY,
    ElementHasAWriter,
    Holder,
    LeaseLost,
    S3Lease,
    claim_element,
)
from tests.integration.storage.conftest import s3_storage

TTL = timedelta(seconds=30)


def test_a_second_writer_of_a_local_element_is_refused(backend: StorageBackend) -> None:
    first = claim_element(backend, "se-one", lease_ttl=TTL)
    try:
        with pytest.raises(ElementHasAWriter, match=r"se-one .* already has a writer: worker"):
            claim_element(backend, "se-one", lease_ttl=TTL)
    finally:
        first.release()
    claim_element(backend, "se-one", lease_ttl=TTL).release()  # free again once released


def test_a_local_lock_is_held_across_processes(tmp_path: Path) -> None:
    backend = LocalStorage(tmp_path / "se-proc")
    claim = claim_element(backend, "se-proc", lease_ttl=TTL)
    try:
        script = (
            "from datetime import timedelta\n"
            "from storage_workers.backends import LocalStorage\n"
            "from storage_workers.writer_claim import claim_element\n"
            f"claim_element(LocalStorage({str(backend.root)!r}), 'se-proc', "
            "lease_ttl=timedelta(seconds=1))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0
        assert "ElementHasAWriter" in result.stderr
    finally:
        claim.release()


@pytest.mark.s3
def test_an_expired_lease_is_taken_over_and_its_stale_holder_cannot_renew_it() -> None:
    with s3_storage() as s3:
        now = datetime.now(UTC)
        stale = claim_element(s3, "se-lease", lease_ttl=timedelta(seconds=5), now=now)
        assert isinstance(stale, S3Lease)
        # Another host's worker whose lease ran out (it stalled): a newcomer takes over.
        s3.write_atomic(
            LEASE_KEY,
            Holder("elsewhere:1:x", "elsewhere", 1, now.isoformat(), now.isoformat()).encode(),
        )
        newcomer = claim_element(s3, "se-lease", lease_ttl=TTL)
        with pytest.raises(LeaseLost, match="taken over"):
            stale.renew()
        with pytest.raises(ElementHasAWriter, match="lease valid until"):
            claim_element(s3, "se-lease", lease_ttl=TTL)
        newcomer.renew()
        newcomer.release()
        claim_element(s3, "se-lease", lease_ttl=TTL).release()
