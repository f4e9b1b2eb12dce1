"""Versions and legal holds on the real stack: an rw and an edit element's workers, the
projector and the facade (docs/lifecycle.md).

Versions: three versions of a document share its id and are numbered 1-3; search shows the
latest only (``all_versions=true``: all); ``/files/{id}/versions`` lists all three. A version of
an unknown, deleted or another account's document is refused with a reason, by the worker (the
document registry) and at the facade's door. Legal holds: a held file survives a delete, its
TTL and its retention period, each refusal answered with the hold's reason and audited, and goes
once the hold is released.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from consumers import migrate
from events import (
    ChangeMode,
    DeleteFile,
    DeletionReason,
    ExpiryHeld,
    FileCommandRejected,
    FileDeleted,
    FileStagedObject,
    FileStored,
    LegalHoldChanged,
    Mode,
    ModeChanged,
    PlaceLegalHold,
    RejectionReason,
    ReleaseLegalHold,
    UpdateMetadata,
    UploadRejected,
    UploadRequested,
)
from storage_workers.service import StorageService
from tests.helpers import wait_until
from tests.integration.query.support import FacadeHarness, facade_harness
from tests.storage_support import CLIENT_ID, FactLog, Producer, running_worker, worker_config

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis]

OWNER = CLIENT_ID
"""A ``user`` account: the producer's tokens (and staging namespace)."""
STRANGER = "sa_test_stranger_11111111"
ADMIN = "sa_test_admin_22222222"
USER_SCOPES = {"files:write", "files:read", "files:delete", "metadata:write"}
RW, EDIT = "se-rw", "se-ed"


class Clock:
    """The edit element's clock, moved forward by the test instead of waiting for a TTL."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Lifecycle:
    facade: FacadeHarness
    producer: Producer
    facts: FactLog
    signer: TestSigner
    clock: Clock
    settings: Settings

    def token(
        self, client_id: str = OWNER, role: str = "user", scopes: set[str] | None = None
    ) -> str:
        return self.signer.issue(
            scopes=scopes or USER_SCOPES, client_id=client_id, role=role, name=client_id
        )

    def admin(self) -> str:
        return self.token(ADMIN, "admin", USER_SCOPES | {"files:hold", "audit:read"})

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def upload(self, content: bytes, client_id: str = OWNER, **fields: Any) -> UploadRequested:
        """An upload command whose bytes are staged in ``client_id``'s own namespace."""
        name = f"{client_id}/in/{uuid.uuid4().hex}"
        path = self.producer.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        values: dict[str, Any] = {
            "file_id": uuid.uuid4(),
            "original_filename": "report.txt",
            "file_size": len(content),
            "checksum": hashlib.sha256(content).hexdigest(),
            "staged": FileStagedObject(path=name),
        }
        return UploadRequested(**(values | fields))

    async def stored(self, command: UploadRequested, token: str | None = None) -> Any:
        await self.producer.send(command, token=token or self.token())
        return (await self.facts.wait(FileStored, file__file_id=command.file_id)).file

    async def rejected(self, command: UploadRequested, token: str | None = None) -> UploadRejected:
        await self.producer.send(command, token=token or self.token())
        rejected: UploadRejected = await self.facts.wait(UploadRejected, file_id=command.file_id)
        return rejected

    async def indexed(self, file_id: uuid.UUID, **expect: Any) -> dict[str, Any]:
        """The file's view once the index shows ``expect``."""
        seen: dict[str, Any] = {}

        async def shown() -> bool:
            response = await self.facade.get(f"/api/v1/files/{file_id}")
            seen.update(response.json())
            return response.status_code == 200 and all(seen.get(k) == v for k, v in expect.items())

        await wait_until(shown, 30, message=f"file {file_id} indexed with {expect}")
        return seen

    async def gone(self, file_id: uuid.UUID) -> None:
        async def deleted() -> bool:
            return (await self.facade.get(f"/api/v1/files/{file_id}")).status_code == 410

        await wait_until(deleted, 30, message=f"file {file_id} deleted in the index")

    def element_root(self, element_id: str) -> Path:
        return self.settings.data_dir / element_id


@dataclass
class Stack:
    """The lifecycle's calls, and the two workers behind them."""

    life: Lifecycle
    rw: StorageService
    edit: StorageService


@contextlib.asynccontextmanager
async def lifecycle_stack(
    settings: Settings,
    jwks_file: Path,
    facts: FactLog,
    producer: Producer,
    signer: TestSigner,
    redis_namespace: str,
) -> AsyncIterator[Stack]:
    """The facade, an rw worker and an edit worker whose clock the tests move, with expiry
    swept every 0.3 s."""
    await migrate(settings.database_url)
    clock = Clock()
    rw = worker_config(
        RW, mode=Mode.RW, root=settings.data_dir / RW, jwks_file=jwks_file, ttl_sweep_interval_s=0.3
    )
    edit = worker_config(
        EDIT,
        mode=Mode.EDIT,
        root=settings.data_dir / EDIT,
        jwks_file=jwks_file,
        ttl_sweep_interval_s=0.3,
        max_command_age_s=30 * 86400,  # commands stay young while the clock is moved ahead
    )
    async with (
        facade_harness(settings, redis_namespace, staging="local") as facade,
        running_worker(settings, rw) as rw_service,
        running_worker(settings, edit, clock=clock) as edit_service,
    ):
        life = Lifecycle(facade, producer, facts, signer, clock, settings)
        yield Stack(life, rw_service, edit_service)


@pytest.fixture(scope="module")
async def life(
    settings: Settings,
    jwks_file: Path,
    topics: None,
    facts: FactLog,
    producer: Producer,
    signer: TestSigner,
    redis_namespace: str,
) -> AsyncIterator[Lifecycle]:
    async with lifecycle_stack(
        settings, jwks_file, facts, producer, signer, redis_namespace
    ) as stack:
        yield stack.life


async def search_ids(life: Lifecycle, tag: str, **params: str) -> list[str]:
    response = await life.facade.get("/api/v1/search", params={"tag": tag, **params})
    assert response.status_code == 200, response.text
    return sorted(item["file_id"] for item in response.json()["items"])


# -- versions -------------------------------------------------------------------------------


async def test_three_versions_share_a_document_and_search_shows_the_latest(
    life: Lifecycle,
) -> None:
    tag = uuid.uuid4().hex
    v1 = await life.stored(life.upload(b"first", tags=[tag]))
    v2 = await life.stored(life.upload(b"second", tags=[tag], version_of=v1.file_id))
    # Any version of a document names it: the third is numbered after the latest.
    v3 = await life.stored(life.upload(b"third", tags=[tag], version_of=v2.file_id))

    assert [(v.document_id, v.document_version) for v in (v1, v2, v3)] == [
        (v1.file_id, 1),
        (v1.file_id, 2),
        (v1.file_id, 3),
    ]
    assert len({v1.file_id, v2.file_id, v3.file_id}) == 3, "each version is a file of its own"
    # The sidecar carries the link, so the element alone can be rebuilt with it.
    sidecar = (life.element_root(RW) / f"{v3.storage_path}.attr.json").read_text()
    assert str(v1.file_id) in sidecar
    assert '"document_version":3' in sidecar

    await life.indexed(v3.file_id, document_version=3)

    async def latest_only() -> bool:
        return await search_ids(life, tag) == [str(v3.file_id)]

    await wait_until(latest_only, 30, message="search shows the latest version only")
    every = await search_ids(life, tag, all_versions="true")
    assert every == sorted(str(v.file_id) for v in (v1, v2, v3))

    response = await life.facade.get(f"/api/v1/files/{v2.file_id}/versions")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["document_id"] == str(v1.file_id)
    assert body["latest"] == str(v3.file_id)
    assert [(v["document_version"], v["file_id"]) for v in body["versions"]] == [
        (1, str(v1.file_id)),
        (2, str(v2.file_id)),
        (3, str(v3.file_id)),
    ]


async def test_versions_sent_together_get_distinct_numbers(life: Lifecycle) -> None:
    first = await life.stored(life.upload(b"base"))
    a = life.upload(b"a", version_of=first.file_id)
    b = life.upload(b"b", version_of=first.file_id)
    await life.producer.send(a, b, token=life.token())
    got_a = (await life.facts.wait(FileStored, file__file_id=a.file_id)).file
    got_b = (await life.facts.wait(FileStored, file__file_id=b.file_id)).file
    assert {got_a.document_version, got_b.document_version} == {2, 3}


async def test_a_version_of_an_unknown_document_is_refused(life: Lifecycle) -> None:
    unknown = uuid.uuid4()
    rejected = await life.rejected(life.upload(b"orphan", version_of=unknown))
    assert rejected.reason is RejectionReason.UNKNOWN_DOCUMENT
    assert str(unknown) in rejected.detail

    response = await life.facade.http.post(
        "/api/v1/uploads",
        params={"filename": "orphan.txt", "version_of": str(unknown)},
        content=b"orphan",
        headers=life.headers(life.token()),
    )
    assert response.status_code == 404, response.text
    assert response.json()["reason"] == "unknown_document"


async def test_a_version_of_a_deleted_document_is_refused(life: Lifecycle) -> None:
    doc = await life.stored(life.upload(b"short", retention_policy="temporary", ttl_days=30))
    assert doc.element_id == EDIT
    await life.producer.send(DeleteFile(file_id=doc.file_id, element_id=EDIT), token=life.token())
    await life.facts.wait(FileDeleted, file_id=doc.file_id)

    rejected = await life.rejected(
        life.upload(b"again", retention_policy="temporary", version_of=doc.file_id)
    )
    assert rejected.reason is RejectionReason.DOCUMENT_DELETED

    await life.gone(doc.file_id)
    response = await life.facade.http.post(
        "/api/v1/uploads",
        params={"filename": "again.txt", "version_of": str(doc.file_id)},
        content=b"again",
        headers=life.headers(life.token()),
    )
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == "document_deleted"


async def test_another_accounts_document_is_refused_as_if_unknown(life: Lifecycle) -> None:
    theirs = await life.stored(life.upload(b"owner's"))
    stranger = life.token(STRANGER)
    refused = await life.rejected(
        life.upload(b"mine now", STRANGER, version_of=theirs.file_id), stranger
    )
    unknown = uuid.uuid4()
    baseline = await life.rejected(life.upload(b"x", STRANGER, version_of=unknown), stranger)
    assert refused.reason is baseline.reason is RejectionReason.UNKNOWN_DOCUMENT
    # The same words as for a file that does not exist: nothing says that it does.
    assert refused.detail.replace(str(theirs.file_id), "?") == baseline.detail.replace(
        str(unknown), "?"
    )
    assert OWNER not in refused.detail

    await life.indexed(theirs.file_id)
    answers = []
    for target in (theirs.file_id, unknown):
        response = await life.facade.http.post(
            "/api/v1/uploads",
            params={"filename": "x.txt", "version_of": str(target)},
            content=b"x",
            headers=life.headers(stranger),
        )
        answers.append((response.status_code, response.json()["reason"]))
    assert answers == [(404, "unknown_document")] * 2

    # An admin may add a version to anyone's document.
    added = await life.stored(
        life.upload(b"admin's", ADMIN, version_of=theirs.file_id), life.admin()
    )
    assert (added.document_id, added.document_version) == (theirs.file_id, 2)


async def test_malformed_ids_are_refused_with_a_4xx(life: Lifecycle) -> None:
    admin = life.headers(life.admin())
    for method, path, kwargs in [
        ("GET", "/api/v1/files/not-a-uuid/versions", {}),
        ("POST", "/api/v1/files/12345/legal-hold", {"json": {"reason": "x"}}),
        ("DELETE", "/api/v1/files/..%2f..%2fetc/legal-hold", {"params": {"reason": "x"}}),
        ("POST", "/api/v1/uploads", {"params": {"filename": "a", "version_of": "nope"}}),
    ]:
        response = await life.facade.http.request(method, path, headers=admin, **kwargs)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
    missing = uuid.uuid4()
    response = await life.facade.http.post(
        f"/api/v1/files/{missing}/legal-hold", json={"reason": "x"}, headers=admin
    )
    assert response.status_code == 404
    response = await life.facade.http.post(
        f"/api/v1/files/{missing}/legal-hold", json={}, headers=admin
    )
    assert 400 <= response.status_code < 500


# -- legal holds ----------------------------------------------------------------------------


async def test_a_user_account_may_not_place_a_hold(life: Lifecycle) -> None:
    doc = await life.stored(life.upload(b"not yours to hold"))
    await life.indexed(doc.file_id)
    response = await life.facade.http.post(
        f"/api/v1/files/{doc.file_id}/legal-hold",
        json={"reason": "mine"},
        headers=life.headers(life.token()),
    )
    assert response.status_code == 403, response.text
    # Past the facade, straight to the element: refused by the worker too.
    await life.producer.send(
        PlaceLegalHold(file_id=doc.file_id, element_id=RW, reason="mine"), token=life.token()
    )
    refused = await life.facts.wait(FileCommandRejected, file_id=doc.file_id)
    assert refused.reason is RejectionReason.INSUFFICIENT_SCOPE
    assert refused.command == "place_legal_hold"
    assert (await life.indexed(doc.file_id))["legal_hold"] is None


async def audit_of(life: Lifecycle, file_id: uuid.UUID, action: str) -> list[dict[str, Any]]:
    response = await life.facade.get(
        "/api/v1/audit", "audit:read", params={"subject": str(file_id), "action": action}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def wait_audit(life: Lifecycle, file_id: uuid.UUID, action: str) -> dict[str, Any]:
    async def recorded() -> bool:
        return bool(await audit_of(life, file_id, action))

    await wait_until(recorded, 30, message=f"audit {action} of {file_id}")
    return (await audit_of(life, file_id, action))[0]


async def test_a_held_file_survives_delete_and_its_ttl_then_goes_once_released(
    life: Lifecycle,
) -> None:
    doc = await life.stored(life.upload(b"evidence", retention_policy="temporary", ttl_days=1))
    assert doc.element_id == EDIT
    await life.indexed(doc.file_id)
    admin = life.headers(life.admin())
    placed = await life.facade.http.post(
        f"/api/v1/files/{doc.file_id}/legal-hold", json={"reason": "case 17"}, headers=admin
    )
    assert placed.status_code == 202, placed.text
    change = await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id)
    assert change.held
    assert change.changed_by == ADMIN
    view = await life.indexed(
        doc.file_id, legal_hold=change.file.legal_hold.model_dump(mode="json")
    )
    assert view["legal_hold"]["reason"] == "case 17"
    assert '"case 17"' in (life.element_root(EDIT) / f"{doc.storage_path}.attr.json").read_text()

    # A delete: refused at the facade's door, and by the element past it, with the reason.
    response = await life.facade.http.delete(
        f"/api/v1/files/{doc.file_id}", headers=life.headers(life.token())
    )
    assert response.status_code == 409, response.text
    assert response.json()["reason"] == "legal_hold"
    assert "case 17" in response.json()["detail"]
    await life.producer.send(DeleteFile(file_id=doc.file_id, element_id=EDIT), token=life.token())
    refused = await life.facts.wait(FileCommandRejected, file_id=doc.file_id, command="delete_file")
    assert refused.reason is RejectionReason.LEGAL_HOLD
    assert "case 17" in refused.detail
    entry = await wait_audit(life, doc.file_id, "file.delete_refused")
    assert entry["outcome"] == "failure"
    assert "case 17" in entry["reason"]

    # Its TTL is over: the sweep keeps it and says why.
    life.clock.offset = timedelta(days=2)
    held = await life.facts.wait(ExpiryHeld, file_id=doc.file_id)
    assert held.expiry is DeletionReason.TTL_EXPIRED
    assert held.hold.reason == "case 17"
    await wait_audit(life, doc.file_id, "file.expiry_refused")
    assert not life.facts.of(FileDeleted, file_id=doc.file_id)
    assert (life.element_root(EDIT) / doc.storage_path).exists()
    await wait_audit(life, doc.file_id, "file.legal_hold_placed")

    released = await life.facade.http.request(
        "DELETE",
        f"/api/v1/files/{doc.file_id}/legal-hold",
        params={"reason": "case closed"},
        headers=admin,
    )
    assert released.status_code == 202, released.text
    deleted = await life.facts.wait(FileDeleted, file_id=doc.file_id)
    assert deleted.reason is DeletionReason.TTL_EXPIRED
    assert not (life.element_root(EDIT) / doc.storage_path).exists()
    await life.gone(doc.file_id)
    await wait_audit(life, doc.file_id, "file.legal_hold_released")


async def test_a_held_file_survives_its_retention_then_goes_once_released(
    life: Lifecycle,
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=6)
    kept = life.upload(b"retained", retain_until=soon)
    plain = life.upload(b"retained too", retain_until=soon)
    await life.producer.send(kept, plain, token=life.token())
    doc = (await life.facts.wait(FileStored, file__file_id=kept.file_id)).file
    await life.facts.wait(FileStored, file__file_id=plain.file_id)
    assert doc.element_id == RW
    assert doc.retain_until == soon
    await life.producer.send(
        PlaceLegalHold(file_id=kept.file_id, element_id=RW, reason="audit 2026"),
        token=life.admin(),
    )
    await life.facts.wait(LegalHoldChanged, file__file_id=kept.file_id)

    # Retention expiry deletes the file without a hold (rw: the element's own deletion) ...
    gone = await life.facts.wait(FileDeleted, within=60, file_id=plain.file_id)
    assert gone.reason is DeletionReason.RETENTION_EXPIRED
    # ... and keeps the held one, saying why.
    held = await life.facts.wait(ExpiryHeld, within=60, file_id=kept.file_id)
    assert held.expiry is DeletionReason.RETENTION_EXPIRED
    assert held.hold.reason == "audit 2026"
    assert not life.facts.of(FileDeleted, file_id=kept.file_id)
    assert (life.element_root(RW) / doc.storage_path).exists()

    await life.producer.send(
        ReleaseLegalHold(file_id=kept.file_id, element_id=RW, reason="audit done"),
        token=life.admin(),
    )
    deleted = await life.facts.wait(FileDeleted, file_id=kept.file_id)
    assert deleted.reason is DeletionReason.RETENTION_EXPIRED
    assert deleted.deleted_by == f"storage:{RW}:retention"


async def test_a_hold_is_placed_and_released_on_a_read_only_element(life: Lifecycle) -> None:
    """Last in the module: the rw element goes read-only, its sidecars frozen but for holds."""
    doc = await life.stored(life.upload(b"to be archived"))
    admin = life.token(ADMIN, "admin", {"elements:admin", "files:hold", "metadata:write"})
    await life.producer.send(
        ChangeMode(element_id=RW, target_mode=Mode.RO, reason="quarter closed"), token=admin
    )
    await life.facts.wait(ModeChanged, element_id=RW, to_mode=Mode.RO)
    await life.producer.send(
        PlaceLegalHold(file_id=doc.file_id, element_id=RW, reason="archived matter"),
        token=admin,
    )
    placed = await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=True)
    assert placed.file.legal_hold is not None
    assert placed.file.legal_hold.reason == "archived matter"
    # Metadata stays frozen there: only the hold changes.
    await life.producer.send(
        UpdateMetadata(file_id=doc.file_id, element_id=RW, description="late edit"), token=admin
    )
    frozen = await life.facts.wait(
        FileCommandRejected, file_id=doc.file_id, command="update_metadata"
    )
    assert frozen.reason is RejectionReason.ELEMENT_MODE
    await life.producer.send(
        ReleaseLegalHold(file_id=doc.file_id, element_id=RW, reason="matter closed"),
        token=admin,
    )
    released = await life.facts.wait(LegalHoldChanged, file__file_id=doc.file_id, held=False)
    assert released.file.legal_hold is None
    assert released.file.version == placed.file.version + 1
