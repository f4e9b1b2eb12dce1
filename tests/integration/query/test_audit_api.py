"""``GET /api/v1/audit`` and ``artstore audit`` read the audit trail the projector keeps."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from base.settings import Settings
from events import AuditRecorded
from producers import ArtStoreClient, Unauthorized
from tests.helpers import wait_until
from tests.integration.query.support import FactPublisher
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = f"sa_test_auditor_{uuid.uuid4().hex[:8]}"


def entry(minute: int, action: str, outcome: str = "success") -> AuditRecorded:
    return AuditRecorded(
        action=action,
        actor=ACTOR,
        subject=f"subject-{minute}",
        outcome=outcome,  # type: ignore[arg-type]
        reason=None if outcome == "success" else "wrong secret",
        details={"minute": minute},
        occurred_at=START + timedelta(minutes=minute),
    )


ENTRIES = [
    *(entry(m, "token.issued") for m in range(0, 10)),
    *(entry(m, "token.failed", "failure") for m in range(10, 13)),
    entry(13, "account.created"),
]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        async with FactPublisher(settings) as publisher:
            await publisher.publish(ENTRIES)
        async with ArtStoreClient(running.client_settings()) as client:

            async def projected() -> bool:
                page = await client.audit(actor=ACTOR, limit=500)
                return len(page["items"]) == len(ENTRIES)

            await wait_until(projected, 60, message="audit entries projected")
        yield running


async def test_filters_select_by_action_prefix_outcome_and_time(pipeline: Pipeline) -> None:
    async with ArtStoreClient(pipeline.client_settings()) as client:
        tokens = await client.audit(actor=ACTOR, action="token.")
        failed = await client.audit(actor=ACTOR, outcome="failure")
        created = await client.audit(actor=ACTOR, action="account.created")
        window = await client.audit(
            actor=ACTOR,
            since=(START + timedelta(minutes=2)).isoformat(),
            until=(START + timedelta(minutes=4)).isoformat(),
        )
    assert len(tokens["items"]) == 13
    assert {e["action"] for e in failed["items"]} == {"token.failed"}
    assert failed["items"][0]["reason"] == "wrong secret"
    assert [e["subject"] for e in created["items"]] == ["subject-13"]
    assert [e["subject"] for e in window["items"]] == ["subject-3", "subject-2"]
    first = created["items"][0]
    assert set(first) >= {"actor", "action", "subject", "outcome", "occurred_at", "correlation_id"}


async def test_pages_follow_one_another_newest_first(pipeline: Pipeline) -> None:
    seen: list[str] = []
    cursor = None
    async with ArtStoreClient(pipeline.client_settings()) as client:
        while True:
            page = await client.audit(actor=ACTOR, limit=4, cursor=cursor)
            seen += [e["subject"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == [f"subject-{m}" for m in range(13, -1, -1)]


async def test_reading_the_audit_trail_needs_audit_read(pipeline: Pipeline) -> None:
    user = await pipeline.create_account(f"reader-{uuid.uuid4().hex[:6]}", role="user")
    async with ArtStoreClient(user) as client:
        with pytest.raises(Unauthorized) as refused:
            await client.audit(actor=ACTOR)
    assert refused.value.status == 403


async def test_the_cli_prints_the_audit_trail(pipeline: Pipeline, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from artstore.cli import main; main()",
        "audit",
        "--actor",
        ACTOR,
        "--action",
        "token.failed",
        "--json",
        cwd=tmp_path,
        env=pipeline.cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    page = json.loads(out)
    assert [e["subject"] for e in page["items"]] == ["subject-12", "subject-11", "subject-10"]
