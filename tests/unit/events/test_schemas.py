"""The committed schemas are exactly what the code generates, and they validate real events."""

from __future__ import annotations

import json

import jsonschema
import pytest

import schemas
from events import SPECS, new_event
from events.schema_export import asyncapi_document, generated_files
from tests.factories import file_record, sample


@pytest.mark.parametrize("rel", sorted(generated_files()))
def test_committed_schema_matches_the_code(rel: str) -> None:
    path = schemas.DIRECTORY / rel
    assert path.exists(), f"{rel} is missing: run `artstore schemas export`"
    assert path.read_text(encoding="utf-8") == generated_files()[rel], (
        f"{rel} differs from the code: run `artstore schemas export` and commit the result"
    )


def test_no_stale_event_schemas_are_committed() -> None:
    committed = {f"events/{p.name}" for p in (schemas.DIRECTORY / "events").glob("*.json")}
    assert committed == {rel for rel in generated_files() if rel.startswith("events/")}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_event_schema_accepts_a_real_event_and_refuses_another_type(spec) -> None:
    schema = json.loads((schemas.DIRECTORY / f"events/{spec.type}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    event = json.loads(new_event(sample(spec.model), source="test").model_dump_json())
    jsonschema.validate(event, schema)
    event["type"] = "artstore.something.else.v1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(event, schema)


def test_asyncapi_lists_every_type_on_its_topics() -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"].startswith("3.")
    for spec in SPECS:
        message = doc["components"]["messages"][spec.model.__name__]
        assert message["name"] == spec.type
        for topic in spec.topics:
            assert spec.model.__name__ in doc["channels"][topic.value]["messages"]
    refs = list(_refs(doc))
    assert refs
    for ref in refs:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"dangling $ref {ref}"
            node = node[part]


def _refs(node: object):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _sidecar_v2() -> dict:
    record = json.loads(file_record().model_dump_json())
    return {"schema_version": "2.0", **record, "x_unknown_field": "kept"}


def test_attr_v2_schema_accepts_a_sidecar_built_from_a_file_record() -> None:
    schema = schemas.attr_schema("2")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_sidecar_v2(), schema)


def test_attr_v2_schema_refuses_a_missing_checksum_and_a_v1_document() -> None:
    schema = schemas.attr_schema("2")
    doc = _sidecar_v2()
    del doc["checksum"]
    with pytest.raises(jsonschema.ValidationError, match="checksum"):
        jsonschema.validate(doc, schema)
    v1 = _sidecar_v2()
    del v1["schema_version"]
    with pytest.raises(jsonschema.ValidationError, match="schema_version"):
        jsonschema.validate(v1, schema)


def test_attr_v1_schema_accepts_a_v1_sidecar_and_refuses_v2() -> None:
    schema = schemas.attr_schema("1")
    jsonschema.Draft202012Validator.check_schema(schema)
    v1 = {
        k: v
        for k, v in _sidecar_v2().items()
        if k
        not in {
            "schema_version",
            "element_id",
            "retention_policy",
            "ttl_expires_at",
            "custom_attributes",
        }
    }
    jsonschema.validate(v1, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_sidecar_v2(), schema)


def test_unknown_attr_version_is_an_error() -> None:
    with pytest.raises(ValueError, match="versions 1 and 2"):
        schemas.attr_schema("3")
