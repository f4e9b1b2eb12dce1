"""Versions, retention and legal holds as pure rules: the sidecar's document link (and old
sidecars without one), holds placed and released in every mode, a held file never deleted nor
expired, which expiry applies in which mode, and the in-memory document registry's numbering."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from auth.scopes import ROLE_SCOPES
from events import (
    DeleteFile,
    DeletionReason,
    LegalHold,
    Mode,
    PlaceLegalHold,
    RejectionReason,
    ReleaseLegalHold,
    Role,
    UploadRequested,
    audit_of_fact,
    new_event,
)
from events.modes import retention_expires_in
from storage_workers.capacity import DEFAULT_FLOORS, measure
from storage_workers.catalogue import Catalogue, CatalogueEntry
from storage_workers.documents import DocumentFile, LocalDocuments
from storage_workers.handlers import (
    AlreadyDone,
    Caller,
    DocumentLink,
    ElementView,
    Reject,
    Remove,
    Rewrite,
    Store,
    decide_delete,
    decide_upload,
)
from storage_workers.legal_holds import HeldExpiries, decide_hold
from storage_workers.sidecar import (
    MAX_SIDECAR_BYTES,
    Sidecar,
    SidecarTooLarge,
    Templates,
    decode_sidecar,
)
from tests.factories import sample, stored_sidecar

OWNER = "sa_dev_owner_00000000"
ADMIN = "sa_dev_admin_22222222"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
HOLD = LegalHold(reason="case 17", placed_by=ADMIN, placed_at=NOW)


def element(mode: Mode) -> ElementView:
    floors = DEFAULT_FLOORS[Mode.EDIT if mode is Mode.EDIT else Mode.RW]
    capacity = measure(capacity_bytes=10**12, used_bytes=0, storage_free=10**12, floors=floors)
    return ElementView("se-01", mode, capacity, Templates({}))


def upload(**fields: object) -> UploadRequested:
    values: dict[str, object] = {
        "file_id": uuid.uuid4(),
        "original_filename": "report.txt",
        "file_size": 5,
        "checksum": "0" * 64,
        "staged": {"kind": "file", "path": f"{OWNER}/x"},
    }
    return UploadRequested.model_validate(values | fields)


def test_a_new_document_is_its_own_first_version_and_a_version_carries_its_link() -> None:
    caller = Caller(OWNER, "owner", "user")
    first = decide_upload(
        upload(), element=element(Mode.RW), existing=None, deleted=False, caller=caller, now=NOW
    )
    assert isinstance(first, Store)
    assert (first.sidecar.document_id, first.sidecar.document_version) == (
        first.sidecar.file_id,
        1,
    )
    document = uuid.uuid4()
    later = decide_upload(
        upload(version_of=document),
        element=element(Mode.RW),
        existing=None,
        deleted=False,
        caller=caller,
        now=NOW,
        document=DocumentLink(document, 4),
    )
    assert isinstance(later, Store)
    written = json.loads(later.encoded)
    assert (written["document_id"], written["document_version"]) == (str(document), 4)
    assert written["version"] == 1, "the sidecar's own version counts its rewrites"
    record = later.sidecar.to_record()
    assert (record.document, record.document_number) == (document, 4)


def test_sidecars_from_before_versions_are_their_own_document() -> None:
    v1 = {
        "file_id": str(uuid.uuid4()),
        "original_filename": "old.pdf",
        "storage_filename": "old_u_20200101T000000_x.pdf",
        "file_size": 3,
        "checksum": "a" * 64,
        "created_at": "2020-01-01T00:00:00",
        "version": 2,
    }
    old = decode_sidecar(json.dumps(v1).encode(), key="2020/old.attr.json", element_id="se-01")
    assert old.document_id is None
    assert (old.document, old.document_number) == (old.file_id, 1)
    assert (old.to_record().document, old.to_record().document_number) == (old.file_id, 1)
    v2 = stored_sidecar(b"x", element_id="se-01").model_dump(mode="json")
    for field in ("document_id", "document_version", "retain_until", "legal_hold"):
        v2.pop(field)
    read = decode_sidecar(json.dumps(v2).encode(), key="k.attr.json", element_id="se-01")
    assert (read.document, read.document_number, read.legal_hold) == (read.file_id, 1, None)


@pytest.mark.parametrize(
    "fields",
    [
        {"retention_policy": "temporary", "retain_until": NOW},
        {"version_of": "same"},
    ],
)
def test_contract_refuses(fields: dict[str, object]) -> None:
    file_id = uuid.uuid4()
    if fields.get("version_of") == "same":
        fields = {"version_of": file_id}
    with pytest.raises(ValueError, match=r"retain_until|itself"):
        upload(file_id=file_id, **fields)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_hold_is_placed_and_released_in_every_mode(mode: Mode) -> None:
    sidecar = stored_sidecar(b"x", element_id="se-01", created_by_id=OWNER)
    admin = Caller(ADMIN, "admin", "admin")
    place = PlaceLegalHold(file_id=sidecar.file_id, element_id="se-01", reason="case 17")
    placed = decide_hold(
        place, element=element(mode), current=sidecar, command_id="c1", caller=admin, now=NOW
    )
    assert isinstance(placed, Rewrite)
    assert placed.sidecar.legal_hold == HOLD
    assert placed.sidecar.version == sidecar.version + 1
    again = decide_hold(
        place, element=element(mode), current=placed.sidecar, command_id="c1", caller=admin, now=NOW
    )
    assert isinstance(again, AlreadyDone), "a redelivered command is answered, not applied again"
    release = ReleaseLegalHold(file_id=sidecar.file_id, element_id="se-01", reason="closed")
    released = decide_hold(
        release,
        element=element(mode),
        current=placed.sidecar,
        command_id="c2",
        caller=admin,
        now=NOW,
    )
    assert isinstance(released, Rewrite)
    assert released.sidecar.legal_hold is None
    twice = decide_hold(
        release,
        element=element(mode),
        current=released.sidecar,
        command_id="c3",
        caller=admin,
        now=NOW,
    )
    assert isinstance(twice, Reject)
    assert twice.reason is RejectionReason.NOT_HELD


def test_a_held_file_is_not_deleted_even_by_an_admin_and_the_refusal_names_the_hold() -> None:
    sidecar = stored_sidecar(b"x", element_id="se-01", created_by_id=OWNER)
    for caller in (Caller(OWNER, "o", "user"), Caller(ADMIN, "a", "admin")):
        decision = decide_delete(
            DeleteFile(file_id=sidecar.file_id, element_id="se-01"),
            element=element(Mode.EDIT),
            current=CatalogueEntry.of(sidecar),
            uploaded_by=OWNER,
            deleted=False,
            caller=caller,
            hold=HOLD,
        )
        assert isinstance(decision, Reject)
        assert decision.reason is RejectionReason.LEGAL_HOLD
        assert "case 17" in decision.detail
        assert ADMIN in decision.detail
    free = decide_delete(
        DeleteFile(file_id=sidecar.file_id, element_id="se-01"),
        element=element(Mode.EDIT),
        current=CatalogueEntry.of(sidecar),
        uploaded_by=OWNER,
        deleted=False,
        caller=Caller(OWNER, "o", "user"),
    )
    assert isinstance(free, Remove)


def test_a_held_file_whose_sidecar_cannot_be_read_is_not_deleted_by_an_admin() -> None:
    held = stored_sidecar(b"x", element_id="se-01", created_by_id=OWNER).replace(legal_hold=HOLD)
    decision = decide_delete(
        DeleteFile(file_id=held.file_id, element_id="se-01"),
        element=element(Mode.EDIT),
        current=CatalogueEntry.of(held),
        uploaded_by=None,
        deleted=False,
        caller=Caller(ADMIN, "a", "admin"),
        hold=None,
    )
    assert isinstance(decision, Reject)
    assert decision.reason is RejectionReason.LEGAL_HOLD
    assert "sidecar cannot be read" in decision.detail


def fullest(sidecar: Sidecar) -> Sidecar:
    """``sidecar`` with as much metadata as an upload or an update may give it."""
    pad = 4096
    while True:
        try:
            full = sidecar.replace(metadata={"pad": "x" * pad})
            full.encode()
            return full
        except SidecarTooLarge:
            pad -= 1


def test_a_hold_fits_on_the_fullest_sidecar_an_account_can_write() -> None:
    full = fullest(stored_sidecar(b"x", element_id="se-01", created_by_id=OWNER))
    reason = "matter 2026-117: " + "r" * 483
    long_admin = Caller("sa_" + "a" * 61, "admin", "admin")
    place = PlaceLegalHold(file_id=full.file_id, element_id="se-01", reason=reason)
    placed = decide_hold(
        place,
        element=element(Mode.RW),
        current=full,
        command_id=str(uuid.uuid4()),
        caller=long_admin,
        now=NOW,
    )
    assert isinstance(placed, Rewrite)
    assert len(placed.encoded) <= MAX_SIDECAR_BYTES
    assert placed.sidecar.legal_hold is not None
    kept = placed.sidecar.legal_hold.reason
    assert kept.endswith("…")
    assert reason.startswith(kept.removesuffix("…"))
    assert len(kept) > len("matter 2026-117: "), "the start of the reason is kept"
    # While held, updates may use what the hold leaves of the room; the release always fits.
    with pytest.raises(SidecarTooLarge):
        placed.sidecar.replace(metadata={"pad": "y" * 5000}).encode()
    release = ReleaseLegalHold(file_id=full.file_id, element_id="se-01", reason="closed")
    released = decide_hold(
        release,
        element=element(Mode.RW),
        current=placed.sidecar,
        command_id="c2",
        caller=long_admin,
        now=NOW,
    )
    assert isinstance(released, Rewrite)


def test_which_expiry_applies_where() -> None:
    assert [m for m in Mode if retention_expires_in(m)] == [Mode.EDIT, Mode.RW]
    base = stored_sidecar(b"x", element_id="se-01")
    retained = CatalogueEntry.of(base.replace(retain_until=NOW))
    held = CatalogueEntry.of(base.replace(file_id=uuid.uuid4(), retain_until=NOW, legal_hold=HOLD))
    catalogue = Catalogue()
    catalogue.add(retained)
    catalogue.add(held)
    later = NOW + timedelta(seconds=1)
    assert catalogue.expired(later, retention_applies=False) == []
    due = catalogue.expired(later, retention_applies=True)
    assert {(d.entry.file_id, d.reason) for d in due} == {
        (retained.file_id, DeletionReason.RETENTION_EXPIRED),
        (held.file_id, DeletionReason.RETENTION_EXPIRED),
    }
    assert [d.entry.held for d in due if d.entry.file_id == held.file_id] == [True]
    assert catalogue.expired(NOW - timedelta(seconds=1), retention_applies=True) == []


def test_a_held_expiry_is_announced_once_per_hold() -> None:
    seen = HeldExpiries()
    file_id = uuid.uuid4()
    assert seen.first_time(file_id, NOW)
    assert not seen.first_time(file_id, NOW)
    assert seen.first_time(file_id, NOW + timedelta(hours=1)), "a new hold is a new refusal"


def test_only_admins_get_the_hold_scope() -> None:
    assert "files:hold" in ROLE_SCOPES[Role.ADMIN]
    assert all("files:hold" not in ROLE_SCOPES[r] for r in Role if r is not Role.ADMIN)


def test_hold_changes_and_held_expiries_are_audited() -> None:
    from events import ExpiryHeld, LegalHoldChanged

    change = sample(LegalHoldChanged)
    assert isinstance(change, LegalHoldChanged)
    audit = audit_of_fact(new_event(change, source="test"))
    assert audit is not None
    assert (audit.data.action, audit.data.actor, audit.data.reason) == (
        "file.legal_hold_placed",
        change.changed_by,
        change.reason,
    )
    held = sample(ExpiryHeld)
    assert isinstance(held, ExpiryHeld)
    refused = audit_of_fact(new_event(held, source="test"))
    assert refused is not None
    assert refused.data.action == "file.expiry_refused"
    assert refused.data.outcome == "failure"
    assert refused.data.reason is not None
    assert held.hold.reason in refused.data.reason


async def test_the_registry_numbers_versions_and_refuses_what_it_must() -> None:
    registry = LocalDocuments()
    doc = uuid.uuid4()
    await registry.stored("se-01", [DocumentFile(doc, doc, 1, OWNER)])

    async def reserve(client: str = OWNER, role: str = "user", of: uuid.UUID = doc) -> object:
        return await registry.reserve(
            file_id=uuid.uuid4(), version_of=of, client_id=client, role=role, element_id="se-01"
        )

    two, three = await reserve(), await reserve()
    assert (two, three) == (DocumentLink(doc, 2), DocumentLink(doc, 3))
    stranger = await reserve("sa_dev_other_11111111")
    unknown = await reserve("sa_dev_other_11111111", of=uuid.uuid4())
    assert isinstance(stranger, Reject)
    assert isinstance(unknown, Reject)
    assert stranger.reason is unknown.reason is RejectionReason.UNKNOWN_DOCUMENT
    assert isinstance(await reserve(ADMIN, "admin"), DocumentLink)
    await registry.deleted([doc])
    # Reservations are not versions: with the only stored version gone, the document is gone.
    deleted = await reserve()
    assert isinstance(deleted, Reject)
    assert deleted.reason is RejectionReason.DOCUMENT_DELETED


def test_search_shows_latest_versions_unless_asked_for_all() -> None:
    from facade.problems import BadRequest
    from facade.search import parse_search

    assert parse_search([]).all_versions is False
    assert parse_search([("all_versions", "true")]).all_versions is True
    assert parse_search([("all_versions", "true")]).fingerprint() != parse_search([]).fingerprint()
    with pytest.raises(BadRequest, match="all_versions"):
        parse_search([("all_versions", "sometimes")])
