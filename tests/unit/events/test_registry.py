"""The registry covers the whole contract, consistently."""

from __future__ import annotations

import re

import pytest

from events import BY_TYPE, SPECS, TOPIC_SPECS, Topic, TopicNames, new_event, spec_for
from events.registry import UnknownEventModel
from tests.factories import SAMPLES, sample

SPEC_NAMES = {
    "UploadRequested",
    "UpdateMetadata",
    "DeleteFile",
    "ChangeMode",
    "FileStored",
    "MetadataUpdated",
    "FileDeleted",
    "UploadRejected",
    "FixityFailed",
    "FixityChecked",
    "FixityRecovered",
    "ElementRegistered",
    "ElementHeartbeat",
    "ModeChanged",
    "ElementFull",
    "AuditRecorded",
}


def test_every_event_named_by_the_spec_is_registered() -> None:
    registered = {spec.model.__name__ for spec in SPECS}
    assert registered >= SPEC_NAMES


def test_types_are_unique_versioned_and_namespaced() -> None:
    types = [spec.type for spec in SPECS]
    assert len(types) == len(set(types))
    for t in types:
        assert re.fullmatch(r"artstore(\.[a-z][a-z-]*)+\.v\d+", t), t


def test_every_registered_type_has_a_test_sample() -> None:
    assert {spec.model for spec in SPECS} == set(SAMPLES)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_route_and_key_of_every_sample(spec) -> None:
    payload = sample(spec.model)
    assert spec.route(payload) in spec.topics
    key = spec.key_of(payload)
    assert key
    envelope = new_event(payload, source="test")
    assert envelope.subject == key
    assert envelope.type == spec.type
    assert BY_TYPE[spec.type] is spec


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.type)
def test_commands_name_their_scope_and_facts_do_not(spec) -> None:
    if spec.kind == "command":
        # files:read: a restore request (a reader asks for an archived file back).
        assert spec.scope in {
            "files:write",
            "metadata:write",
            "files:delete",
            "files:hold",
            "elements:admin",
            "files:read",
        }
        assert all(TOPIC_SPECS[t].kind == "command" for t in spec.topics)
    else:
        assert spec.scope is None
        assert all(TOPIC_SPECS[t].kind == "fact" for t in spec.topics)


def test_unregistered_payload_is_refused() -> None:
    from events.models.common import LocalBackend

    with pytest.raises(UnknownEventModel, match="LocalBackend"):
        spec_for(LocalBackend(root="/x"))


def test_topic_names_take_the_prefix_and_map_back() -> None:
    names = TopicNames("t123.artstore")
    assert names.name(Topic.UPLOADS_RW) == "t123.artstore.uploads.rw"
    assert names.logical("t123.artstore.files") is Topic.FILES
    assert names.logical("other.files") is None
    assert names.logical("t123.artstore.nope") is None
    assert TopicNames().name(Topic.DLQ) == "artstore.dlq"


@pytest.mark.parametrize("prefix", ["", "bad prefix", "a/b", "ü"])
def test_topic_prefix_must_be_a_legal_kafka_name(prefix: str) -> None:
    with pytest.raises(ValueError, match="topic prefix"):
        TopicNames(prefix)


def test_partition_counts_cover_every_topic() -> None:
    assert set(TOPIC_SPECS) == set(Topic)
    assert all(spec.partitions >= 1 for spec in TOPIC_SPECS.values())
    commands = [s for s in TOPIC_SPECS.values() if s.kind == "command"]
    assert all(s.configs.get("message.timestamp.type") == "LogAppendTime" for s in commands)
