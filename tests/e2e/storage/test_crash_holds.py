"""SIGKILL the worker at each journal step of placing a legal hold: after a restart the hold
is on the sidecar exactly once (one rewrite, announced), and it is enforced (a delete, even an
admin's, is refused). A hold change is a sidecar rewrite, so its crash points are the update's
(docs/lifecycle.md, "Legal hold"; test_crash.py for the other families).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import (
    DeleteFile,
    FileCommandRejected,
    FileStored,
    LegalHoldChanged,
    PlaceLegalHold,
    RejectionReason,
    create_topics,
)
from tests.e2e.storage.test_crash import (
    ELEMENT,
    UPDATE_DELETE_STEPS,
    Element,
    Outcome,
    assert_clean,
    facts_until,
    files_of,
)
from tests.e2e.storage.worker_process import WorkerProcess
from tests.helpers import wait_until
from tests.storage_support import Producer

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

ADMIN = "sa_test_admin_22222222"


async def run_scenario(
    step: str, settings: Settings, jwks_file: Path, signer: TestSigner
) -> Outcome:
    lane = f"hold-{step}"
    settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}.{lane}",
            "data_dir": settings.data_dir / lane,
        }
    )
    settings.data_dir.mkdir(parents=True)
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    element = Element("local", settings, lane)
    worker = WorkerProcess(
        settings,
        jwks_file,
        signer.issuer,
        element_id=ELEMENT,
        mode="edit",
        **element.worker_config(),
        capacity_bytes=10**9,
        floor_full_bytes=0,
        floor_critical_bytes=0,
        floor_warning_bytes=0,
    )
    producer = Producer(settings, signer, settings.data_dir / "staging")
    admin = signer.issue(
        scopes={"files:hold", "files:delete"}, client_id=ADMIN, role="admin", name="admin"
    )
    await producer.start()
    upload = producer.upload(b"held through a crash", retention_policy="temporary")
    outcome = Outcome(upload.file_id)
    try:
        worker.start(crash_at=f"update.{step}")
        await wait_until(worker.ready_async, 90, message="worker ready")
        await producer.send(upload)
        stored = await facts_until(settings, FileStored, upload.file_id)
        outcome.stored = Outcome(upload.file_id, facts=stored).of(FileStored, upload.file_id)[0]
        hold = PlaceLegalHold(file_id=upload.file_id, element_id=ELEMENT, reason=f"case {step}")
        await producer.send(hold, token=admin)
        await wait_until(lambda: worker.exited() is not None, 90, message=f"crash at {step}")
        outcome.exit_code = worker.exited()
        worker.proc = None
        worker.start()
        await asyncio.gather(
            facts_until(settings, LegalHoldChanged, upload.file_id),
            wait_until(worker.ready_async, 90, message="worker ready after restart"),
        )
        await producer.send(DeleteFile(file_id=upload.file_id, element_id=ELEMENT), token=admin)
        outcome.facts = await facts_until(settings, FileCommandRejected, upload.file_id)
    except Exception as exc:
        outcome.error = exc
    finally:
        await asyncio.to_thread(worker.stop)
        await producer.stop()
    outcome.objects = await asyncio.to_thread(element.objects)
    return outcome


@pytest.fixture(scope="module")
async def outcomes(settings: Settings, jwks_file: Path, signer: TestSigner) -> dict[str, Outcome]:
    results = await asyncio.gather(
        *(run_scenario(step, settings, jwks_file, signer) for step in UPDATE_DELETE_STEPS)
    )
    return dict(zip(UPDATE_DELETE_STEPS, results, strict=True))


@pytest.mark.parametrize("step", UPDATE_DELETE_STEPS)
def test_a_hold_is_placed_exactly_once_and_enforced_after_a_crash_at(
    step: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[step]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.exit_code == -9, f"the worker was to SIGKILL itself at update.{step}"
    assert outcome.stored is not None
    changes = outcome.of(LegalHoldChanged, outcome.file_id)
    assert {(c.held, c.file.version) for c in changes} == {(True, 2)}
    path = outcome.stored.file.storage_path
    assert files_of(outcome) == [path, f"{path}.attr.json"]
    sidecar = json.loads(outcome.objects[f"{path}.attr.json"])
    assert sidecar["version"] == 2
    assert sidecar["legal_hold"]["reason"] == f"case {step}"
    assert sidecar["legal_hold"]["placed_by"] == ADMIN
    (refused,) = outcome.of(FileCommandRejected, outcome.file_id)
    assert refused.reason is RejectionReason.LEGAL_HOLD
    assert f"case {step}" in refused.detail
    assert_clean(outcome)
