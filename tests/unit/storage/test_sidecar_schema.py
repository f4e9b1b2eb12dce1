"""The compiled sidecar check and the attr.json v2 schema agree (the schema has the last word)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import pytest

import schemas
from storage_workers.sidecar import Sidecar, SidecarError, _compiled_check, _validator

DRAFT_07_KEYWORDS = {
    "$schema", "$id", "$ref", "title", "description", "type", "required", "properties",
    "additionalProperties", "const", "enum", "format", "pattern", "minLength", "maxLength",
    "minimum", "maximum", "items", "maxItems", "minItems", "propertyNames", "anyOf", "oneOf",
    "allOf", "not", "default", "examples",
}  # fmt: skip


def keywords(node: Any) -> set[str]:
    """Every keyword the schema uses (the names under "properties" are not keywords)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            subschemas = value.values() if key == "properties" else [value]
            for subschema in subschemas:
                found |= keywords(subschema)
    elif isinstance(node, list):
        for item in node:
            found |= keywords(item)
    return found


def valid() -> dict[str, Any]:
    now = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    sidecar = Sidecar(
        file_id=uuid.uuid4(),
        original_filename="Отчёт за 2026.pdf",
        storage_filename="Отчёт за 2026_tester_20261125T170000_x.pdf",
        file_size=10,
        content_type="application/pdf",
        checksum="ab" * 32,
        created_at=now,
        updated_at=now,
        created_by_id="svc",
        created_by_username="tester",
        storage_path="2026/11/25/17/x.pdf",
        element_id="se-1",
        retention_policy="temporary",
        ttl_expires_at=now,
        tags=["a", "отчёт"],
        metadata={"any": {"nested": [1, 2]}},
        custom_attributes={"n": 1, "list": ["x", 2, None, True]},
    )
    return {**sidecar.model_dump(mode="json"), "schema_version": "2.0", "unknown_field": [1]}


INVALID = {
    "schema version": {"schema_version": "1.0"},
    "file_id not a uuid": {"file_id": "not-a-uuid"},
    "empty filename": {"original_filename": ""},
    "long filename": {"original_filename": "x" * 1025},
    "long storage filename": {"storage_filename": "x" * 201},
    "negative size": {"file_size": -1},
    "size not an integer": {"file_size": 1.5},
    "long content type": {"content_type": "x" * 256},
    "checksum upper case": {"checksum": "AB" * 32},
    "checksum short": {"checksum": "ab"},
    "created_at not a string": {"created_at": 5},
    "creator not a string": {"created_by_id": None},
    "long description": {"description": "x" * 1001},
    "version zero": {"version": 0},
    "element id upper case": {"element_id": "SE-1"},
    "retention unknown": {"retention_policy": "forever"},
    "empty tag": {"tags": [""]},
    "long tag": {"tags": ["x" * 65]},
    "too many tags": {"tags": [str(i) for i in range(51)]},
    "metadata not an object": {"metadata": []},
    "custom attribute name too long": {"custom_attributes": {"x" * 65: 1}},
    "custom attribute nested object": {"custom_attributes": {"a": {"b": 1}}},
    "custom attribute nested list": {"custom_attributes": {"a": [[1]]}},
}


def test_the_schema_uses_only_draft_07_keywords() -> None:
    assert keywords(schemas.attr_schema("2")) <= DRAFT_07_KEYWORDS


def test_a_valid_sidecar_passes_both() -> None:
    document = valid()
    _compiled_check()(document)
    assert list(_validator().iter_errors(document)) == []


@pytest.mark.parametrize("change", INVALID.values(), ids=list(INVALID))
def test_what_the_schema_refuses_the_compiled_check_refuses(change: dict[str, Any]) -> None:
    document = {**valid(), **change}
    assert list(_validator().iter_errors(document)), "the schema accepts this case"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        _compiled_check()(document)


def test_an_invalid_sidecar_is_refused_with_where_and_why() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    sidecar = Sidecar.model_validate({**valid(), "created_at": now, "tags": ["x" * 65]})
    with pytest.raises(SidecarError, match=r"invalid at tags\.0"):
        sidecar.encode()
