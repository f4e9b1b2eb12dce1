"""Versions and legal holds under attack, on the real stack: what a hostile caller or a damaged
element must not get past (docs/lifecycle.md). The same stack as test_versions_and_holds (an rw
and an edit element's workers, the projector and the facade), with the workers at hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from consumers.replay import replay
from consumers.settings import ProjectorSettings
from events import (
    DeleteFile,
    DeletionReason,
    ExpiryHeld,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    LegalHoldChanged,
    PlaceLegalHold,
    RejectionReason,
    ReleaseLegalHold,
    UploadRejected,
    new_event,
)
from storage_workers.rebuild import collect
from tests.helpers import wait_until
from tests.integration.query.support import fetch
from tests.integration.storage.test_partial_failure import FailsOnce
from tests.integration.storage.test_versions_and_holds import (
    ADMIN,
    EDIT,
    RW,
    Lifecycle,
    Stack,
    lifecycle_stack,
)
from tests.storage_support import FactLog, Producer

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
async def stack_(
    settings: Settings,
    jwks_file: Path,
    topics: None,
    facts: FactLog,
    producer: Producer,
    signer: TestSigner,
    redis_namespace: str,
) -> AsyncIterator[Stack]:
    async with lifecycle_stack(
        settings, jwks_file, facts, producer, signer, redis_namespace
    ) as stack:
        yield stack


async def send_altered(life: Lifecycle, command: Any, token: str, **data: Any) -> None:
    """Publish ``command`` with ``data`` changed in its payload after validation, as a
    producer that builds its records itself may."""
    record = life.producer.publisher.encode(new_event(command, source="test://producer"), token)
    value = json.loads(record.value)
    value["data"].update(data)
    await life.producer.publisher.send_records([replace(record, value=json.dumps(value).encode())])


# -- bad input ------------------------------------------------------------------------------


async def test_a_retention_date_beyond_utc_is_refused_and_the_index_keeps_working(
    stack_: Stack,
) -> None:
    """9999-12-31T23:59:59-23:59 is a valid date with a zone, but in UTC it is in year 10000:
    PostgreSQL stores it and no reader can convert it. Accepted, it stopped the projector (the
    index froze for every account). It is refused with a reason at the facade and past it."""
    life = stack_.life
    beyond = "9999-12-31T23:59:59-23:59"
    response = await life.facade.http.post(
        "/api/v1/uploads",
        params={"filename": "far.txt", "retain_until": beyond},
        content=b"far",
        headers=life.headers(life.token()),
    )
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == "retain_until"
    assert "UTC" in response.json()["detail"]

    # Straight to Kafka (the command model checked by the worker, not the facade).
    command = life.upload(b"far")
    await send_altered(life, command, life.token(), retain_until=beyond)
    refused = await life.facts.wait(UploadRejected, file_id=command.file_id)
    assert refused.reason is RejectionReason.INVALID_PAYLOAD
    assert "retain_until" in refused.detail

    # The index still follows: a later upload is indexed.
    after = await life.stored(life.upload(b"after the far date"))
    await life.indexed(after.file_id)


# -- hold integrity -------------------------------------------------------------------------


async def test_a_held_file_whose_sidecar_is_missing_is_not_deleted_even_by_an_admin(
    stack_: Stack,
) -> None:
    """An admin may delete a file whose sidecar cannot be read (its uploader is unknown), but
    the element still knows it is held: the delete is refused with the reason."""
    life = stack_.life
    doc = await life.stored(life.upload(b"held, sidecar lost", retention_policy="temporary"))
    await life.producer.send(
        PlaceLegalHold(file_id=doc.file_id, element_id=EDIT, reason="case 9"), token=life.admin()
    )
    await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=True)
    (life.element_root(EDIT) / f"{doc.storage_path}.attr.json").unlink()

    await life.producer.send(DeleteFile(file_id=doc.file_id, element_id=EDIT), token=life.admin())
    refused = await life.facts.wait(FileCommandRejected, file_id=doc.file_id, command="delete_file")
    assert refused.reason is RejectionReason.LEGAL_HOLD
    assert "legal hold" in refused.detail
    assert not life.facts.of(FileDeleted, file_id=doc.file_id)
    assert (life.element_root(EDIT) / doc.storage_path).exists()


async def test_a_hold_whose_commit_failed_after_its_sidecar_landed_still_keeps_the_file(
    stack_: Stack,
) -> None:
    """The storage fails after the new sidecar was renamed into place (syncing its
    directory): the hold is on storage, and announced when the command comes again, but the
    worker's catalogue, which the expiry sweep reads, did not learn it and the TTL sweep
    deleted the held file. Released the same way, the file then goes."""
    life = stack_.life
    worker = stack_.edit.worker
    assert worker is not None
    doc = await life.stored(
        life.upload(b"held through a failed commit", retention_policy="temporary", ttl_days=1)
    )
    real = worker.backend
    try:
        worker.backend = FailsOnce(real, "sync_dirs", 1, doc.storage_path)  # type: ignore[assignment]
        await life.producer.send(
            PlaceLegalHold(file_id=doc.file_id, element_id=EDIT, reason="case 5"),
            token=life.admin(),
        )
        await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=True)
        worker.backend = real
        life.clock.offset = timedelta(days=2)
        held = await life.facts.wait(ExpiryHeld, file_id=doc.file_id)
        assert held.hold.reason == "case 5"
        assert not life.facts.of(FileDeleted, file_id=doc.file_id)
        assert (life.element_root(EDIT) / doc.storage_path).exists()

        worker.backend = FailsOnce(real, "sync_dirs", 1, doc.storage_path)  # type: ignore[assignment]
        await life.producer.send(
            ReleaseLegalHold(file_id=doc.file_id, element_id=EDIT, reason="case closed"),
            token=life.admin(),
        )
        await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=False)
        worker.backend = real
        deleted = await life.facts.wait(FileDeleted, file_id=doc.file_id)
        assert deleted.reason is DeletionReason.TTL_EXPIRED
    finally:
        worker.backend = real
        life.clock.offset = timedelta(0)


async def test_an_account_cannot_fill_its_sidecar_so_that_no_hold_fits(stack_: Stack) -> None:
    """The owner fills the sidecar (metadata) as far as the element accepts: a hold placed
    afterwards must still fit in the 4,096 bytes. It did not (sidecar_too_large): an account
    could make any of its files impossible to hold. Every sidecar now keeps room for a hold;
    a long reason is shortened in the sidecar and kept whole in the fact and the audit."""
    life = stack_.life
    commands = [
        life.upload(b"full", retention_policy="temporary", metadata={"pad": "x" * pad})
        for pad in range(2500, 3200, 25)
    ]
    await life.producer.send(*commands, token=life.token())
    for command in commands:
        await wait_until(
            lambda c=command: bool(
                life.facts.of(FileStored, file__file_id=c.file_id)
                or life.facts.of(UploadRejected, file_id=c.file_id)
            ),
            30,
            message=f"outcome of {command.file_id}",
        )
    stored = [c for c in commands if life.facts.of(FileStored, file__file_id=c.file_id)]
    assert stored, "the pads span the element's limit"
    assert len(stored) < len(commands), "the pads span the element's limit"
    fullest = life.facts.of(FileStored, file__file_id=stored[-1].file_id)[0].file
    reason = ("litigation hold, matter 2026-117: " + "every record of the project " * 17)[:500]

    await life.producer.send(
        PlaceLegalHold(file_id=fullest.file_id, element_id=EDIT, reason=reason),
        token=life.admin(),
    )
    placed = await life.facts.wait(LegalHoldChanged, file__file_id=fullest.file_id)
    assert placed.held
    assert placed.reason == reason
    assert placed.file.legal_hold is not None
    assert reason.startswith(placed.file.legal_hold.reason.removesuffix("…"))
    raw = (life.element_root(EDIT) / f"{fullest.storage_path}.attr.json").read_bytes()
    assert len(raw) <= 4096
    assert json.loads(raw)["legal_hold"]["placed_by"] == ADMIN


async def test_a_hold_survives_a_rebuild_of_the_element_and_a_replay_of_the_index(
    stack_: Stack, redis_namespace: str
) -> None:
    """The hold is in the sidecar: rebuilding from the element's files announces it, and
    replaying the topics into fresh tables gives the live index's hold (a released one stays
    released)."""
    life = stack_.life
    worker = stack_.rw.worker
    assert worker is not None
    held = await life.stored(life.upload(b"held for the rebuild"))
    released = await life.stored(life.upload(b"released before the rebuild"))
    admin = life.admin()
    for doc in (held, released):
        await life.producer.send(
            PlaceLegalHold(file_id=doc.file_id, element_id=RW, reason="matter 8"), token=admin
        )
        await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=True)
    await life.producer.send(
        ReleaseLegalHold(file_id=released.file_id, element_id=RW, reason="done"), token=admin
    )
    await life.facts.wait(LegalHoldChanged, file__file_id=released.file_id, held=False)
    live = await life.indexed(held.file_id, version=2)
    await life.indexed(released.file_id, version=3, legal_hold=None)

    facts, report = await asyncio.to_thread(collect, worker.backend, RW)
    assert not report.unreadable
    rebuilt = {
        o.envelope.data.file.file_id: o.envelope.data.file
        for o in facts
        if isinstance(o.envelope.data, FileStored)
    }
    assert rebuilt[held.file_id].legal_hold is not None
    assert rebuilt[held.file_id].legal_hold.reason == "matter 8"
    assert rebuilt[released.file_id].legal_hold is None

    projector = ProjectorSettings(
        group_id=f"{redis_namespace}replay", cache_generation_key=f"{redis_namespace}replay"
    )
    fresh = await replay(life.settings, projector, swap=False)
    rows = await fetch(
        life.settings.database_url,
        f"SELECT file_id, legal_hold FROM {fresh.schema}.files WHERE file_id = ANY($1::uuid[])",
        [held.file_id, released.file_id],
    )
    replayed = {r["file_id"]: r["legal_hold"] for r in rows}
    assert replayed[released.file_id] is None
    assert json.loads(replayed[held.file_id]) == live["legal_hold"]


# -- privilege --------------------------------------------------------------------------------


async def test_hold_commands_past_the_facade_are_refused_with_a_reason(stack_: Stack) -> None:
    """Published straight to Kafka with the caller's own token: a readonly or auditor
    account, an admin's expired token, a release of a file that is not held and a hold on an
    element that does not hold the file are each refused with a reason; nothing changes."""
    life = stack_.life
    doc = await life.stored(life.upload(b"not to be held by just anyone"))
    await life.indexed(doc.file_id)
    readonly = life.token("sa_test_readonly_33333333", "readonly", {"files:read"})
    auditor = life.token("sa_test_auditor_44444444", "auditor", {"files:read", "audit:read"})
    for token in (readonly, auditor):
        response = await life.facade.http.post(
            f"/api/v1/files/{doc.file_id}/legal-hold",
            json={"reason": "mine"},
            headers=life.headers(token),
        )
        assert response.status_code == 403, response.text
    expired = life.signer.issue(
        scopes={"files:hold"},
        client_id=ADMIN,
        role="admin",
        issued_at=datetime.now(UTC) - timedelta(hours=2),
        ttl=timedelta(minutes=5),
    )
    place = PlaceLegalHold(file_id=doc.file_id, element_id=RW, reason="mine")
    release = ReleaseLegalHold(file_id=doc.file_id, element_id=RW, reason="never held")
    elsewhere = PlaceLegalHold(file_id=doc.file_id, element_id=EDIT, reason="wrong element")
    for command, token in [
        (place, readonly),
        (place, auditor),
        (place, expired),
        (release, life.admin()),
        (elsewhere, life.admin()),
    ]:
        await life.producer.send(command, token=token)
    await wait_until(
        lambda: len(life.facts.of(FileCommandRejected, file_id=doc.file_id)) >= 5,
        30,
        message="five refusals",
    )
    refusals = [
        (r.command, r.element_id, r.reason)
        for r in life.facts.of(FileCommandRejected, file_id=doc.file_id)
    ]
    assert sorted(refusals) == sorted(
        [
            ("place_legal_hold", RW, RejectionReason.INSUFFICIENT_SCOPE),
            ("place_legal_hold", RW, RejectionReason.INSUFFICIENT_SCOPE),
            ("place_legal_hold", RW, RejectionReason.INVALID_TOKEN),
            ("release_legal_hold", RW, RejectionReason.NOT_HELD),
            ("place_legal_hold", EDIT, RejectionReason.FILE_NOT_FOUND),
        ]
    )
    assert all(r.detail for r in life.facts.of(FileCommandRejected, file_id=doc.file_id))
    assert not life.facts.of(LegalHoldChanged, file__file_id=doc.file_id)
    assert (await life.indexed(doc.file_id))["legal_hold"] is None


# -- versions integrity -----------------------------------------------------------------------


async def test_a_redelivered_version_takes_one_number_and_is_stored_once(stack_: Stack) -> None:
    life = stack_.life
    base = await life.stored(life.upload(b"the first version"))
    version = life.upload(b"the second version", version_of=base.file_id)
    await life.producer.send(version, version, token=life.token())
    first = await life.facts.wait(FileStored, file__file_id=version.file_id)
    await life.producer.send(version, token=life.token())  # again, once it is stored
    await wait_until(
        lambda: len(life.facts.of(FileStored, file__file_id=version.file_id)) >= 2,
        30,
        message="the redelivery answered",
    )
    answers = life.facts.of(FileStored, file__file_id=version.file_id)
    assert {(a.file.document_version, a.file.storage_path) for a in answers} == {
        (2, first.file.storage_path)
    }
    rows = await fetch(
        life.settings.database_url,
        "SELECT file_id, version FROM storage_document_versions WHERE document_id = $1",
        base.file_id,
    )
    assert sorted(r["version"] for r in rows) == [1, 2]
    third = await life.stored(life.upload(b"the third version", version_of=base.file_id))
    assert third.document_version == 3, "the redelivery used no number"


async def test_a_version_across_classes_and_of_a_deleted_version_keeps_the_first_id(
    stack_: Stack,
) -> None:
    """A temporary first version (edit), a permanent second (rw); once the first is deleted, a
    version of it is still one of the document (others are left): number 3, the first's id."""
    life = stack_.life
    first = await life.stored(life.upload(b"draft", retention_policy="temporary"))
    second = await life.stored(life.upload(b"final", version_of=first.file_id))
    assert (first.element_id, second.element_id) == (EDIT, RW)
    await life.producer.send(DeleteFile(file_id=first.file_id, element_id=EDIT), token=life.token())
    await life.facts.wait(FileDeleted, file_id=first.file_id)
    third = await life.stored(life.upload(b"amended", version_of=first.file_id))
    assert [(v.document_id, v.document_version) for v in (second, third)] == [
        (first.file_id, 2),
        (first.file_id, 3),
    ]
    await life.gone(first.file_id)
    await life.indexed(third.file_id)
    response = await life.facade.get(f"/api/v1/files/{second.file_id}/versions")
    body = response.json()
    assert body["latest"] == str(third.file_id)
    assert [(v["document_version"], v["deleted_at"] is not None) for v in body["versions"]] == [
        (1, True),
        (2, False),
        (3, False),
    ]


async def test_an_upload_cannot_bring_its_own_hold_or_document_link(stack_: Stack) -> None:
    """Hold and version fields are the element's to write: an upload command carrying them
    (built by a producer itself) is refused with a reason, nothing stored."""
    life = stack_.life
    forged = {
        "legal_hold": {"reason": "x", "placed_by": "me", "placed_at": "2026-01-01T00:00:00Z"},
        "document_id": "00000000-0000-4000-8000-000000000001",
        "document_version": 7,
    }
    for name, value in forged.items():
        command = life.upload(b"forged " + name.encode())
        await send_altered(life, command, life.token(), **{name: value})
        refused = await life.facts.wait(UploadRejected, file_id=command.file_id)
        assert refused.reason is RejectionReason.INVALID_PAYLOAD
        assert name in refused.detail
        assert not life.facts.of(FileStored, file__file_id=command.file_id)
