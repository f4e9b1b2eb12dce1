"""The SDK refuses an upload that breaks the contract before a byte is staged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.client import upload_command_fields
from producers.errors import InvalidUpload
from producers.models import UploadRequest


def test_a_retention_date_in_the_past_is_refused_before_anything_is_staged() -> None:
    """A permanent file whose retention is already over would be stored and deleted at the
    next sweep: a typo in the year would lose it (the facade refuses it too)."""
    past = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(InvalidUpload, match="future") as refused:
        upload_command_fields(UploadRequest(source=b"x", filename="a.txt", retain_until=past))
    assert refused.value.field == "retain_until"
    later = datetime.now(UTC) + timedelta(days=1)
    fields = upload_command_fields(UploadRequest(source=b"x", filename="a.txt", retain_until=later))
    assert fields["retain_until"] == later


def test_a_retention_date_without_a_zone_is_refused() -> None:
    naive = datetime.now() + timedelta(days=1)
    with pytest.raises(InvalidUpload) as refused:
        upload_command_fields(UploadRequest(source=b"x", filename="a.txt", retain_until=naive))
    assert refused.value.field == "retain_until"
