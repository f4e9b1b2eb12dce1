"""JSON Schema per event type and the AsyncAPI 3.0 document, generated from the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from events.registry import SPECS, EventSpec
from events.topics import TOPIC_SPECS, TopicNames, max_message_config

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


def _binding_configuration(configs: dict[str, str]) -> dict[str, Any]:
    """Broker configs as the AsyncAPI Kafka binding types them (policies a list, numbers ints)."""
    typed: dict[str, Any] = {}
    for key, value in sorted(configs.items()):
        if key == "cleanup.policy":
            typed[key] = value.split(",")
        elif value.lstrip("-").isdigit():
            typed[key] = int(value)
        else:
            typed[key] = value
    return typed


def event_schema(spec: EventSpec[Any]) -> dict[str, Any]:
    """A standalone JSON Schema of the full envelope of one event type."""
    schema = spec.envelope_model().model_json_schema()
    schema["title"] = spec.type
    schema["$schema"] = _JSON_SCHEMA_DIALECT
    schema["$id"] = f"urn:artstore:event:{spec.type}"
    schema["properties"]["type"] = {"const": spec.type, "title": "Type", "type": "string"}
    schema["description"] = (spec.model.__doc__ or "").strip()
    return dict(schema)


def asyncapi_document(names: TopicNames | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document: one channel per topic, one message per event type."""
    names = names or TopicNames()
    mode: Literal["validation"] = "validation"
    envelope_models = [(spec.envelope_model(), mode) for spec in SPECS]
    key_map, defs = models_json_schema(envelope_models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in SPECS:
        ref = key_map[(spec.envelope_model(), "validation")]["$ref"]
        schema_name = ref.rsplit("/", 1)[-1]
        schemas[schema_name] = {
            **schemas[schema_name],
            "title": spec.type,
            "properties": {
                **schemas[schema_name]["properties"],
                "type": {"const": spec.type, "title": "Type", "type": "string"},
            },
        }
        message_name = spec.model.__name__
        messages[message_name] = {
            "name": spec.type,
            "title": message_name,
            "summary": (spec.model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/cloudevents+json",
            "payload": {"$ref": ref},
            "headers": _headers_schema(spec),
            "bindings": {"kafka": {"key": {"type": "string", "description": _key_doc(spec)}}},
        }
    for topic, topic_spec in TOPIC_SPECS.items():
        channel_id = topic.value
        carried = [s for s in SPECS if topic in s.topics]
        channels[channel_id] = {
            "address": names.name(topic),
            "description": f"{topic_spec.kind} topic, {topic_spec.partitions} partitions",
            "messages": {
                s.model.__name__: {"$ref": f"#/components/messages/{s.model.__name__}"}
                for s in carried
            },
            "bindings": {
                "kafka": {
                    "partitions": topic_spec.partitions,
                    "topicConfiguration": _binding_configuration(
                        {**topic_spec.configs, **max_message_config(_DEFAULT_MAX_MESSAGE_BYTES)}
                    ),
                }
            },
        }
        if carried:
            operations[f"publish-{channel_id}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [
                    {"$ref": f"#/channels/{channel_id}/messages/{s.model.__name__}"}
                    for s in carried
                ],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ArtStore events",
            "version": "1.0.0",
            "description": "Commands and facts of the ArtStore archive, as CloudEvents 1.0.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def _headers_schema(spec: EventSpec[Any]) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ce_type": {"const": spec.type},
        "ce_id": {"type": "string"},
        "correlation_id": {"type": "string"},
    }
    required = ["ce_type", "ce_id"]
    if spec.kind == "command":
        props["authorization"] = {
            "type": "string",
            "pattern": "^Bearer ",
            "description": f"The caller's JWT; needs scope {spec.scope}.",
        }
        required.append("authorization")
    return {"type": "object", "properties": props, "required": required}


def _key_doc(spec: EventSpec[Any]) -> str:
    return {"command": "id the command is about", "fact": "id the fact is about"}[spec.kind]


def render(document: dict[str, Any]) -> str:
    """Stable text for a generated document, so the committed copy can be compared exactly."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Every generated file, relative path -> content."""
    files = {f"events/{spec.type}.schema.json": render(event_schema(spec)) for spec in SPECS}
    files["asyncapi.json"] = render(asyncapi_document())
    return files


def export(directory: Path) -> list[Path]:
    """Write the generated files under ``directory``; drop stale event schemas. Returns paths."""
    written = []
    files = generated_files()
    events_dir = directory / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    for stale in events_dir.glob("*.schema.json"):
        if f"events/{stale.name}" not in files:
            stale.unlink()
    for rel, text in files.items():
        path = directory / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
