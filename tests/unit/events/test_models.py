"""Payload rules that are decisions, not just types."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from events import ChangeMode, RetentionPolicy, S3StagedObject, UpdateMetadata, UploadRequested
from tests.factories import CHECKSUM, file_record


def _upload(**changes: object) -> UploadRequested:
    values: dict[str, object] = {
        "file_id": uuid.uuid4(),
        "original_filename": "a.txt",
        "file_size": 1,
        "checksum": CHECKSUM,
        "staged": {"kind": "s3", "bucket": "stage", "key": "a"},
    }
    values.update(changes)
    return UploadRequested.model_validate(values)


def test_temporary_upload_defaults_to_a_30_day_ttl() -> None:
    assert _upload(retention_policy="temporary").ttl_days == 30


def test_permanent_upload_refuses_a_ttl() -> None:
    with pytest.raises(ValidationError, match="ttl_days applies only"):
        _upload(retention_policy="permanent", ttl_days=5)


@pytest.mark.parametrize("ttl", [0, 366])
def test_ttl_is_between_1_and_365_days(ttl: int) -> None:
    with pytest.raises(ValidationError, match="ttl_days"):
        _upload(retention_policy="temporary", ttl_days=ttl)


def test_staged_reference_is_discriminated_by_kind() -> None:
    assert isinstance(_upload().staged, S3StagedObject)
    assert _upload(staged={"kind": "file", "path": "in/a.txt"}).staged.kind == "file"
    with pytest.raises(ValidationError):
        _upload(staged={"kind": "ftp", "path": "x"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("checksum", "ABC"),
        ("checksum", "g" * 64),
        ("file_size", -1),
        ("original_filename", ""),
        ("unexpected", 1),
        ("tags", ["x"] * 51),
    ],
)
def test_upload_refuses_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        _upload(**{field: value})


def test_update_must_change_something() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        UpdateMetadata(file_id=uuid.uuid4(), element_id="se-01")


@pytest.mark.parametrize("element_id", ["SE-01", "-se", "se/01", "", "a" * 64])
def test_element_ids_are_restricted(element_id: str) -> None:
    with pytest.raises(ValidationError, match="element_id"):
        ChangeMode(element_id=element_id, target_mode="ro", reason="x")


def test_payloads_are_immutable() -> None:
    upload = _upload()
    with pytest.raises(ValidationError, match="frozen"):
        upload.file_size = 2  # type: ignore[misc]


def test_file_record_needs_timezone_aware_times() -> None:
    from datetime import datetime

    with pytest.raises(ValidationError, match="timezone"):
        file_record(created_at=datetime(2026, 1, 1))


def test_retention_policy_values_are_the_specs() -> None:
    assert {p.value for p in RetentionPolicy} == {"temporary", "permanent"}
