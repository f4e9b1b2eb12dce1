"""A worker killed after its uploads became durable, but before the claims heard of them,
starts again after another element took some of them over (PostgreSQL claims, real broker).

The state a SIGKILL leaves is built by hand here (files, release record, claims), so each
case is certain; ``tests/e2e/storage/test_kill_restart.py`` reaches it with real kills.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from artstore.stack.postgres_server import asyncpg_dsn
from base.settings import Settings
from events import FileStagedObject, FileStored, Mode
from storage_workers.backends import LocalStorage, WrittenObject
from storage_workers.claim_checks import ConfinedClaim
from storage_workers.claims import PostgresClaims
from storage_workers.element import RELEASES_DIR
from storage_workers.naming import file_id_of, is_sidecar, sidecar_path
from tests.helpers import wait_until
from tests.integration.storage.fixity_faults import store_files_of_size
from tests.storage_support import CLIENT_ID, FactLog, Producer, running_worker, worker_config


def stage(staging: Path, name: str) -> str:
    """A staged file in the test client's namespace; its journalled claim check."""
    path = staging / CLIENT_ID / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"staged bytes of " + name.encode())
    staged = FileStagedObject(path=f"{CLIENT_ID}/in/{name}")
    return ConfinedClaim(owner=CLIENT_ID, staged=staged).model_dump_json()


async def test_an_upload_taken_over_while_the_element_was_down_is_withdrawn_from_it(
    settings: Settings, jwks_file: Path, topics: None, tmp_path: Path
) -> None:
    element = f"se-settle-{uuid.uuid4().hex[:8]}"
    other = f"se-other-{uuid.uuid4().hex[:8]}"
    root = tmp_path / element
    staging = tmp_path / "staging"
    backend = LocalStorage(root)
    taken, kept = store_files_of_size(backend, element, 2, 4096)
    staged = {
        str(taken.file_id): stage(staging, "taken"),
        str(kept.file_id): stage(staging, "kept"),
    }
    # What a kill between the journal commit and the claims' update leaves behind.
    record = {
        "txid": "killed",
        "began_at": "2026-12-01T00:00:00+00:00",
        "ops": [],
        "staged": staged,
    }
    backend.write_atomic(f"{RELEASES_DIR}killed.json", json.dumps(record).encode())
    claims = PostgresClaims(settings.database_url)
    try:
        await claims.claim(element, {kept.file_id: kept.checksum})
        # The other element took the first upload over while this one looked dead.
        await claims.claim(other, {taken.file_id: taken.checksum})

        config = worker_config(
            element,
            mode=Mode.RW,
            root=root,
            jwks_file=jwks_file,
            staging_dir=staging,
            upload_claims=True,
        )
        async with running_worker(settings, config) as service:
            assert service.worker is not None
            assert service.worker.catalogue.get(taken.file_id) is None
            assert service.worker.catalogue.get(kept.file_id) is not None

        found = await claims.claim(element, {taken.file_id: "x", kept.file_id: "x"})
    finally:
        await claims.close()
    # Withdrawn: no copy here, no tombstone; the owner's staged bytes are left for it.
    assert not (root / taken.storage_path).exists()
    assert not (root / sidecar_path(taken.storage_path)).exists()
    assert not list((root / ".artstore").glob(f"tombstones/{taken.file_id}*"))
    assert (staging / CLIENT_ID / "in" / "taken").exists()
    assert found[taken.file_id].element_id == other
    assert found[taken.file_id].stored is None
    # Kept: recorded as stored here, its staged bytes removed, the record forgotten.
    assert (root / kept.storage_path).exists()
    assert found[kept.file_id].element_id == element
    assert found[kept.file_id].stored is not None
    assert found[kept.file_id].stored.file_id == kept.file_id
    assert not (staging / CLIENT_ID / "in" / "kept").exists()
    assert not list((root / ".artstore").glob("releases/*.json"))
    assert not list((root / ".artstore").glob("journal/*.json"))


class ClaimStolenMidWrite(LocalStorage):
    """A real element whose first data write lets another element take its upload's claim,
    as when the writer outlives its claim's lease mid-write."""

    def __init__(self, root: Path, database_url: str, thief: str) -> None:
        super().__init__(root)
        self.database_url = database_url
        self.thief = thief
        self.stolen: set[uuid.UUID] = set()

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        file_id = file_id_of(key)
        if file_id is not None and not is_sidecar(key) and not self.stolen:
            asyncio.run(self._steal(file_id))  # a thread of the worker's: a loop of its own
            self.stolen.add(file_id)
        return super().write_pending(key, chunks, durable=durable)

    async def _steal(self, file_id: uuid.UUID) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.database_url))
        try:
            await conn.execute(
                "UPDATE storage_upload_claims SET element_id = $2 WHERE file_id = $1",
                file_id,
                self.thief,
            )
        finally:
            await conn.close()


async def test_an_upload_whose_claim_is_taken_mid_write_is_withdrawn_not_announced(
    settings: Settings,
    jwks_file: Path,
    topics: None,
    tmp_path: Path,
    producer: Producer,
    facts: FactLog,
) -> None:
    element = f"se-slow-{uuid.uuid4().hex[:8]}"
    thief = f"se-thief-{uuid.uuid4().hex[:8]}"
    root = tmp_path / element
    backend = ClaimStolenMidWrite(root, settings.database_url, thief)
    config = worker_config(
        element,
        mode=Mode.RW,
        root=root,
        jwks_file=jwks_file,
        staging_dir=producer.staging,
        upload_claims=True,
    )
    upload = producer.upload(b"written while the lease ran out", "late.txt")
    staged = producer.staging / upload.staged.path  # type: ignore[union-attr]
    async with running_worker(settings, config, backend=backend) as service:
        await producer.send(upload)
        journal = root / ".artstore"

        def withdrawn() -> bool:
            return (
                bool(backend.stolen)
                and not list(journal.glob("journal/*.json"))
                and not list(journal.glob("releases/*.json"))
            )

        await wait_until(withdrawn, 60, message="the batch settled")
        assert service.worker is not None
        assert service.worker.catalogue.get(upload.file_id) is None
    assert backend.stolen == {upload.file_id}
    assert not list(root.glob(f"20*/**/*{upload.file_id}*"))
    assert staged.exists(), "the owner's staged bytes were removed"
    stored = [
        e
        for e in facts.events
        if isinstance(e.envelope.data, FileStored)
        and e.envelope.data.file.file_id == upload.file_id
    ]
    assert stored == []
    claims = PostgresClaims(settings.database_url)
    try:
        found = await claims.claim(element, {upload.file_id: upload.checksum})
    finally:
        await claims.close()
    assert found[upload.file_id].element_id == thief
