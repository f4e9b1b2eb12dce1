"""Which facts notify whom: the routing table, owners, kinds, one delivery per event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from events import FileStored, RejectionReason, UploadRejected, new_event
from notifications import ROUTES, NotificationKind
from notifications.matching import deliveries_for, notable, route_of_type
from notifications.queue import Subscriber
from tests.factories import file_record

NOW = datetime(2027, 1, 10, 12, tzinfo=UTC)


def subscriber(client: str, *kinds: NotificationKind, created: datetime = NOW) -> Subscriber:
    return Subscriber(uuid.uuid4(), client, frozenset(k.value for k in kinds), created)


def stored(client: str, at: datetime = NOW) -> object:
    record = file_record(created_by_id=client)
    return new_event(FileStored(file=record), source="se-01", time=at)


def test_stored_and_rejected_uploads_are_routed_to_the_uploading_account() -> None:
    event = stored("sa_alice")
    assert notable(event).owner == "sa_alice"  # type: ignore[arg-type, union-attr]
    rejected = new_event(
        UploadRejected(
            file_id=uuid.uuid4(),
            reason=RejectionReason.CHECKSUM_MISMATCH,
            detail="x",
            rejected_at=NOW,
            requested_by="sa_bob",
        ),
        source="se-01",
    )
    hit = notable(rejected)
    assert hit is not None
    assert (hit.owner, hit.route.kind) == (
        "sa_bob",
        NotificationKind.UPLOAD_REJECTED,
    )
    assert route_of_type("artstore.file.stored.v1") is ROUTES["FileStored"]
    assert route_of_type("artstore.file.deleted.v1") is None
    assert route_of_type(None) is None


def test_a_rejection_without_a_verified_caller_notifies_nobody() -> None:
    event = new_event(
        UploadRejected(
            file_id=uuid.uuid4(),
            reason=RejectionReason.INVALID_TOKEN,
            detail="bad token",
            rejected_at=NOW,
        ),
        source="se-01",
    )
    assert notable(event) is None


def test_the_restore_rows_are_in_the_table_by_model_name() -> None:
    for name, kind in [
        ("RestoreStarted", NotificationKind.RESTORE_STARTED),
        ("FileRestored", NotificationKind.RESTORE_COMPLETED),
        ("RestoreExpiring", NotificationKind.RESTORE_EXPIRING),
        ("RestoreFailed", NotificationKind.RESTORE_FAILED),
    ]:
        assert ROUTES[name].kind is kind
        assert ROUTES[name].owner == "requested_by"


def test_only_the_owners_webhooks_of_that_kind_registered_before_the_event_hear() -> None:
    event = stored("sa_alice")
    alice = subscriber("sa_alice", NotificationKind.UPLOAD_STORED)
    alice_rejections = subscriber("sa_alice", NotificationKind.UPLOAD_REJECTED)
    alice_late = subscriber("sa_alice", NotificationKind.UPLOAD_STORED, created=NOW + timedelta(1))
    bob = subscriber("sa_bob", NotificationKind.UPLOAD_STORED)
    hit = notable(event)
    assert hit is not None
    out = deliveries_for([hit], [alice, alice_rejections, alice_late, bob])
    assert [d.webhook_id for d in out] == [alice.webhook_id]
    body = json.loads(out[0].body)
    assert body["kind"] == "upload.stored"
    assert body["delivery_id"] == str(out[0].delivery_id)
    assert body["data"]["file"]["created_by_id"] == "sa_alice"


def test_the_same_file_announced_twice_is_one_delivery_with_the_same_id() -> None:
    record = file_record(created_by_id="sa_alice")
    first = new_event(FileStored(file=record), source="se-01", time=NOW)
    again = new_event(FileStored(file=record), source="se-02", time=NOW)
    assert first.id != again.id
    alice = subscriber("sa_alice", NotificationKind.UPLOAD_STORED)
    hits = [notable(first), notable(again)]
    together = deliveries_for([h for h in hits if h], [alice])
    apart = [deliveries_for([h], [alice]) for h in hits if h]
    assert len(together) == 1
    assert apart[0][0].delivery_id == apart[1][0].delivery_id
