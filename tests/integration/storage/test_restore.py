"""Restore on request between two real workers: an ar element whose content is on its cold
tier, and the edit element that keeps restored copies (short durations through settings)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from base.settings import Settings
from events import (
    ChangeMode,
    ElementArchived,
    FileRestored,
    FileStored,
    Mode,
    ModeChanged,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreFailureReason,
    RestoreRequested,
    RestoreStarted,
    Topic,
)
from events.dead_letters import REASON, SOURCE_TOPIC
from storage_workers.restored_copies import RestoredCopy, data_key, record_key
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.storage_support import FactLog, Producer, running_worker, worker_config

pytestmark = [pytest.mark.kafka, pytest.mark.s3]

ARCHIVE, RESTORE = "se-arch", "se-restore"
KEEP_S, WARN_S = 8.0, 5.0


@pytest.fixture(scope="module")
async def elements(
    settings: Settings, jwks_file: Path, topics: None
) -> AsyncIterator[tuple[StorageService, StorageService]]:
    ar = worker_config(
        ARCHIVE,
        mode=Mode.RW,
        root=settings.data_dir / ARCHIVE,
        jwks_file=jwks_file,
        cold_backend="local",
        cold_root=settings.data_dir / "tape",
        restore_element_id=RESTORE,
        fixity_enabled=False,
    )
    keeper = worker_config(
        RESTORE,
        mode=Mode.EDIT,
        root=settings.data_dir / RESTORE,
        jwks_file=jwks_file,
        restore_ttl_s=KEEP_S,
        restore_warning_s=WARN_S,
        ttl_sweep_interval_s=0.2,
        fixity_enabled=False,
    )
    async with (
        running_worker(settings, ar) as archive,
        running_worker(settings, keeper) as restore,
    ):
        yield archive, restore


def request(file_id: uuid.UUID, element_id: str = ARCHIVE) -> RestoreRequested:
    return RestoreRequested(
        restore_id=uuid.uuid4(),
        file_id=file_id,
        element_id=element_id,
        requested_by="claimed-by-the-command",
        requested_at=datetime.now(UTC),
    )


@pytest.fixture(scope="module")
async def archived_file(
    elements: tuple[StorageService, StorageService], producer: Producer, facts: FactLog
) -> tuple[uuid.UUID, bytes]:
    content = b"an archived ledger page\n" * 300
    upload = producer.upload(content, "ledger.txt")
    await producer.send(upload)
    await facts.wait(FileStored, file__file_id=upload.file_id)
    await producer.send(ChangeMode(element_id=ARCHIVE, target_mode=Mode.RO, reason="closed"))
    await facts.wait(ModeChanged, element_id=ARCHIVE, to_mode=Mode.RO)
    await producer.send(ChangeMode(element_id=ARCHIVE, target_mode=Mode.AR, reason="tape"))
    await facts.wait(ElementArchived, within=60, element_id=ARCHIVE)
    archive, _ = elements
    entry = archive.worker.catalogue.get(upload.file_id) if archive.worker else None
    assert entry is not None
    assert entry.cold, "the file's content is on the cold tier only"
    assert not (archive.config.root / entry.storage_path).exists()  # type: ignore[operator]
    return upload.file_id, content


async def test_a_restore_is_copied_verified_kept_warned_about_and_removed(
    elements: tuple[StorageService, StorageService],
    archived_file: tuple[uuid.UUID, bytes],
    producer: Producer,
    facts: FactLog,
) -> None:
    _, keeper = elements
    assert keeper.worker is not None
    file_id, content = archived_file
    used_before = keeper.worker.capacity().used_bytes
    asked = request(file_id)
    await producer.send(asked, token=producer.token(scopes={"files:read"}))

    started = await facts.wait(RestoreStarted, restore_id=asked.restore_id)
    assert started.requested_by == producer.client_id, "who asked is the token's, not the claim"
    restored = await facts.wait(FileRestored, within=60, restore_id=asked.restore_id)
    assert (restored.file_id, restored.restore_element_id) == (file_id, RESTORE)
    assert restored.checksum == hashlib.sha256(content).hexdigest()
    assert (restored.expires_at - restored.restored_at).total_seconds() == KEEP_S
    assert keeper.config.root is not None
    copy = keeper.config.root / restored.storage_path
    assert copy.read_bytes() == content
    assert restored.file_id not in {e.file_id for e in keeper.worker.catalogue.entries()}
    assert keeper.worker.capacity().used_bytes == used_before + len(content), "the copy counts"

    expiring = await facts.wait(RestoreExpiring, within=30, restore_id=asked.restore_id)
    assert expiring.expires_at == restored.expires_at
    assert copy.exists(), "warned, not yet removed"
    expired = await facts.wait(RestoreExpired, within=30, restore_id=asked.restore_id)
    assert expired.expired_at >= restored.expires_at
    await wait_until(lambda: not copy.exists(), 10, message="the restored copy removed")
    assert len(facts.of(FileRestored, restore_id=asked.restore_id)) == 1
    assert not facts.of(RestoreFailed, restore_id=asked.restore_id)
    worker = keeper.worker
    await wait_until(
        lambda: worker.capacity().used_bytes == used_before, 10, message="its room given back"
    )


async def test_a_restore_of_someone_elses_or_an_unknown_file_reveals_nothing(
    archived_file: tuple[uuid.UUID, bytes], producer: Producer, facts: FactLog
) -> None:
    file_id, _ = archived_file
    theirs = request(file_id)
    other = producer.signer.issue(scopes={"files:read"}, name="other", client_id="sa_test_other_1")
    await producer.send(theirs, token=other)
    unknown = request(uuid.uuid4())
    await producer.send(unknown, token=producer.token(scopes={"files:read"}))
    refused_theirs = await facts.wait(RestoreFailed, restore_id=theirs.restore_id)
    refused_unknown = await facts.wait(RestoreFailed, restore_id=unknown.restore_id)
    assert refused_theirs.reason is refused_unknown.reason is RestoreFailureReason.NOT_FOUND
    assert "holds no file" in refused_theirs.detail
    assert not facts.of(RestoreStarted, restore_id=theirs.restore_id)


async def test_a_restore_without_scope_is_refused_with_its_reason(
    archived_file: tuple[uuid.UUID, bytes], producer: Producer, facts: FactLog
) -> None:
    file_id, _ = archived_file
    asked = request(file_id)
    await producer.send(asked, token=producer.token(scopes={"files:write"}))
    refused = await facts.wait(RestoreFailed, restore_id=asked.restore_id)
    assert refused.reason is RestoreFailureReason.REFUSED
    assert "files:read" in refused.detail


async def test_an_unreadable_hand_over_is_dead_lettered_and_later_restores_go_on(
    elements: tuple[StorageService, StorageService],
    archived_file: tuple[uuid.UUID, bytes],
    producer: Producer,
    facts: FactLog,
) -> None:
    # Anything on artstore.restores that is not a readable event: refused once, not read again
    # and again in front of every hand-over after it.
    marker = uuid.uuid4().hex.encode()
    await producer.send_raw(Topic.RESTORES, RESTORE.encode(), b"{not json " + marker, {})
    file_id, content = archived_file
    asked = request(file_id)
    await producer.send(asked, token=producer.token(scopes={"files:read"}))
    restored = await facts.wait(FileRestored, within=60, restore_id=asked.restore_id)
    assert restored.checksum == hashlib.sha256(content).hexdigest()
    await wait_until(
        lambda: any(marker in (r.value or b"") for r in facts.dlq), 30, message="dead-lettered"
    )
    (dead,) = [r for r in facts.dlq if marker in (r.value or b"")]
    headers = dict(dead.headers)
    assert headers[REASON] == b"not_json", headers
    assert headers[SOURCE_TOPIC].endswith(b"restores")


async def test_a_restore_id_already_kept_for_another_is_not_handed_to_a_second_asker(
    elements: tuple[StorageService, StorageService],
    archived_file: tuple[uuid.UUID, bytes],
    producer: Producer,
    facts: FactLog,
) -> None:
    # A command chooses its restore id: one already kept for another account is refused, not
    # answered with that account's copy.
    _, keeper = elements
    file_id, _ = archived_file
    first = request(file_id)
    await producer.send(first, token=producer.token(scopes={"files:read"}))
    await facts.wait(FileRestored, within=60, restore_id=first.restore_id)
    admin = producer.signer.issue(
        scopes={"files:read"}, name="admin", client_id="sa_test_admin_1", role="admin"
    )
    await producer.send(first.model_copy(update={"requested_at": datetime.now(UTC)}), token=admin)
    refused = await facts.wait(
        RestoreFailed, within=60, restore_id=first.restore_id, requested_by="sa_test_admin_1"
    )
    assert "already taken" in refused.detail
    assert len(facts.of(FileRestored, restore_id=first.restore_id)) == 1
    assert keeper.config.root is not None
    assert (keeper.config.root / f".artstore/restored/{first.restore_id}").exists()


async def test_a_restore_element_without_room_for_the_copy_refuses_it_with_its_reason(
    elements: tuple[StorageService, StorageService],
    archived_file: tuple[uuid.UUID, bytes],
    producer: Producer,
    facts: FactLog,
) -> None:
    _, keeper = elements
    worker = keeper.worker
    assert worker is not None
    file_id, content = archived_file
    roomy = worker.limits
    # An operator's resize: the element holds what it holds, plus less than the copy needs.
    worker.limits = replace(roomy, capacity_bytes=worker.capacity().used_bytes + len(content) - 1)
    try:
        asked = request(file_id)
        await producer.send(asked, token=producer.token(scopes={"files:read"}))
        refused = await facts.wait(RestoreFailed, within=60, restore_id=asked.restore_id)
    finally:
        worker.limits = roomy
    assert refused.reason is RestoreFailureReason.RESTORE_ELEMENT_UNAVAILABLE
    assert "full" in refused.detail
    assert f"the copy has {len(content)}" in refused.detail
    assert not facts.of(FileRestored, restore_id=asked.restore_id)
    assert keeper.config.root is not None
    assert not (keeper.config.root / f".artstore/restored/{asked.restore_id}").exists()


async def test_copies_kept_before_a_start_count_from_the_start(
    settings: Settings, jwks_file: Path, topics: None
) -> None:
    """A restore element started again counts the copies it keeps at once, not at its first
    sweep: until then its room was overstated, and a hand-over that did not fit was kept."""
    element_id = f"se-kept-{uuid.uuid4().hex[:6]}"
    root = settings.data_dir / element_id
    content = b"a copy kept before the restart\n" * 1000
    now = datetime.now(UTC)
    copy = RestoredCopy(
        restore_id=uuid.uuid4(),
        file_id=uuid.uuid4(),
        requested_by="sa_test_someone_00000000",
        element_id=ARCHIVE,
        checksum=hashlib.sha256(content).hexdigest(),
        file_size=len(content),
        original_filename="kept.txt",
        content_type="text/plain",
        restored_at=now,
        expires_at=now + timedelta(days=1),
    )
    kept = root / data_key(copy.restore_id)
    kept.parent.mkdir(parents=True)
    kept.write_bytes(content)
    (root / record_key(copy.restore_id)).write_text(copy.model_dump_json())
    (root / record_key(uuid.uuid4())).write_text('{"restore_id": "torn')  # read by none
    config = worker_config(
        element_id,
        mode=Mode.EDIT,
        root=root,
        jwks_file=jwks_file,
        ttl_sweep_interval_s=3600.0,  # no sweep during the test: the start alone counts
        fixity_enabled=False,
    )
    async with running_worker(settings, config) as service:
        assert service.worker is not None
        assert service.worker.restored_bytes == len(content)
        assert service.worker.capacity().used_bytes >= len(content)
