"""A restore id belongs to the restore it was made for: facts naming it for another file or
another account (a RestoreRequested published straight to the broker may choose any restore id,
say one seen in a shared link) leave that restore's row as it was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from artstore.stack.postgres_server import asyncpg_dsn
from base.settings import Settings
from consumers import queued_restore
from consumers.restore_rows import restore_step
from consumers.store import ProjectionStore
from events import FileRestored, RestoreRequested, RestoreStarted

pytestmark = [pytest.mark.postgres]


async def row(settings: Settings, restore_id: uuid.UUID) -> asyncpg.Record:
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        found = await conn.fetchrow("SELECT * FROM restores WHERE restore_id = $1", restore_id)
    finally:
        await conn.close()
    assert found is not None
    return found


async def test_facts_for_another_file_or_account_do_not_take_over_a_restore(
    migrated: Settings,
) -> None:
    store = await ProjectionStore.connect(migrated.database_url)
    now = datetime.now(UTC)
    victims = RestoreRequested(
        restore_id=uuid.uuid4(),
        file_id=uuid.uuid4(),
        element_id="se-arch",
        requested_by="sa_victim",
        requested_at=now,
    )
    mine = uuid.uuid4()
    try:
        await store.queue_restore(queued_restore(victims))
        hijack = FileRestored(
            restore_id=victims.restore_id,
            file_id=mine,
            requested_by="sa_attacker",
            element_id="se-arch",
            restore_element_id="se-restore",
            storage_path=f".artstore/restored/{victims.restore_id}",
            checksum="a" * 64,
            restored_at=now,
            expires_at=now + timedelta(days=30),
        )
        same_file_other_account = RestoreStarted(
            restore_id=victims.restore_id,
            file_id=victims.file_id,
            requested_by="sa_attacker",
            element_id="se-arch",
            started_at=now,
        )
        await store.record_uploads([restore_step(hijack), restore_step(same_file_other_account)])
        kept = await row(migrated, victims.restore_id)
        assert (kept["file_id"], kept["requested_by"]) == (victims.file_id, "sa_victim")
        assert (kept["status"], kept["storage_path"], kept["checksum"]) == ("queued", None, None)

        started = same_file_other_account.model_copy(update={"requested_by": "sa_victim"})
        await store.record_uploads([restore_step(started)])
        assert (await row(migrated, victims.restore_id))["status"] == "in_progress"
    finally:
        await store.close()
