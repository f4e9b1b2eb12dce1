"""Who may write an upload another element has claimed (storage_workers.handlers.decide_claim)."""

from __future__ import annotations

from typing import Any

from events import RejectionReason
from storage_workers.handlers import (
    BusyElsewhere,
    Owned,
    Reject,
    StoredElsewhere,
    TakeOver,
    decide_claim,
)


def decide(**changes: Any) -> object:
    values: dict[str, Any] = {
        "me": "se-b",
        "owner": "se-a",
        "owner_checksum": "c1",
        "checksum": "c1",
        "stored": False,
        "owner_live": True,
        "claim_age_s": 5.0,
        "lease_s": 300.0,
        "file_id": "f-1",
    }
    values.update(changes)
    return decide_claim(**values)


def test_my_own_claim_lets_me_write() -> None:
    assert decide(owner="se-b") == Owned()


def test_stored_elsewhere_is_re_announced_from_there() -> None:
    assert decide(stored=True) == StoredElsewhere("se-a")


def test_a_live_element_still_writing_makes_the_upload_wait() -> None:
    decision = decide()
    assert isinstance(decision, BusyElsewhere)
    assert "se-a" in decision.detail


def test_a_gone_claimant_or_an_expired_lease_is_taken_over() -> None:
    assert decide(owner_live=False) == TakeOver("se-a")
    assert decide(claim_age_s=301.0) == TakeOver("se-a")


def test_another_checksum_is_a_duplicate_file_id() -> None:
    decision = decide(owner_checksum="c2", stored=True)
    assert isinstance(decision, Reject)
    assert decision.reason is RejectionReason.DUPLICATE_FILE_ID
