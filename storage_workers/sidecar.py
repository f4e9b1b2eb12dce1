"""attr.json: the sidecar that is the source of truth for a stored file (SPEC §3).

We write v2; v1 (no ``schema_version``) is read and migrated in memory and persisted as v2 on
the next write. Fields we don't know are kept, byte for byte in meaning, through every rewrite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import UUID

import fastjsonschema
import jsonschema
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

import schemas
from events import FileRecord, LegalHold, RetentionPolicy

MAX_SIDECAR_BYTES = 4096
HOLD_ROOM_BYTES = 320
"""Bytes of every sidecar kept free for a legal hold (who, when, the start of the reason) and
the rewrite that places it: an account cannot fill its file's sidecar so that no hold fits.
Uploads and metadata updates may use ``MAX_SIDECAR_BYTES - HOLD_ROOM_BYTES`` (not counting a
hold already placed); a hold change may use all of it (docs/lifecycle.md)."""
SCHEMA_VERSION = "2.0"
COLD_COPY = "cold_copy"
"""The sidecar field (an extra field v2 allows) that says a file's content is on the element's
cold tier, not online: ``{"key": ..., "sha256": ..., "verified_at": ...}``. Written only once
the cold copy was read back and matched the checksum."""


class SidecarError(ValueError):
    """A sidecar can't be read or written; the message says which file and why."""


class SidecarTooLarge(SidecarError):
    """The serialised sidecar would exceed 4,096 bytes."""

    def __init__(self, size: int, limit: int = MAX_SIDECAR_BYTES) -> None:
        kept = "" if limit == MAX_SIDECAR_BYTES else f" ({MAX_SIDECAR_BYTES} less room for a hold)"
        super().__init__(
            f"attr.json would be {size} bytes, over the {limit}-byte limit{kept}; "
            "shorten the description, tags, metadata or custom attributes"
        )
        self.size = size
        self.limit = limit


class Sidecar(BaseModel):
    """attr.json v2: a flat object; unknown fields are allowed and kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: str = SCHEMA_VERSION
    file_id: UUID
    original_filename: str
    storage_filename: str
    file_size: int = Field(ge=0)
    content_type: str
    checksum: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    created_by_id: str
    created_by_username: str
    created_by_fullname: str | None = None
    description: str | None = None
    version: int = Field(1, ge=1)
    storage_path: str
    element_id: str
    retention_policy: RetentionPolicy
    ttl_expires_at: AwareDatetime | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    custom_attributes: dict[str, Any] = Field(default_factory=dict)
    document_id: UUID | None = None
    """The document this file is a version of (the first version's file id). Absent in
    sidecars written before versions: the file is then its own document, version 1."""
    document_version: int | None = Field(None, ge=1)
    """This file's version of its document (not ``version``, which counts sidecar rewrites)."""
    retain_until: AwareDatetime | None = None
    legal_hold: LegalHold | None = None

    @property
    def document(self) -> UUID:
        """The document id (the file's own id for sidecars from before versions)."""
        return self.document_id or self.file_id

    @property
    def document_number(self) -> int:
        """The document version (1 for sidecars from before versions)."""
        return self.document_version or 1

    @property
    def cold_copy(self) -> dict[str, Any] | None:
        """Where the content is on the cold tier (None: it is online)."""
        found = self.extras.get(COLD_COPY)
        return found if isinstance(found, dict) else None

    @property
    def extras(self) -> dict[str, Any]:
        """Fields this version doesn't know, as read."""
        return dict(self.__pydantic_extra__ or {})

    def to_record(self) -> FileRecord:
        """The sidecar as announced in facts."""
        known = self.model_dump(
            mode="json", exclude={"schema_version", *self.extras}, exclude_none=False
        )
        return FileRecord.model_validate(known)

    def replace(self, **changes: Any) -> Sidecar:
        """A copy with ``changes`` applied, unknown fields kept."""
        data = self.model_dump(mode="json")
        data.update({k: _jsonable(v) for k, v in changes.items()})
        return Sidecar.model_validate(data)

    def encode(self, *, hold_room: bool = True) -> bytes:
        """Serialised v2, validated against the attr.json v2 schema and the size limit
        (``hold_room``: keeping :data:`HOLD_ROOM_BYTES` free for a legal hold; False only for
        the rewrite that places or releases one)."""
        document = self.model_dump(mode="json")
        document["schema_version"] = SCHEMA_VERSION
        try:
            _compiled_check()(document)
        except fastjsonschema.JsonSchemaValueException:
            # The compiled check is at least as strict as the schema; the schema itself has the
            # last word, and says where the problem is.
            errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.path))
            if errors:
                first = errors[0]
                where = ".".join(str(p) for p in first.path) or "(root)"
                raise SidecarError(
                    f"attr.json for {self.file_id} is invalid at {where}: {first.message}"
                ) from None
        raw = _dumps(document)
        if len(raw) > MAX_SIDECAR_BYTES:
            raise SidecarTooLarge(len(raw))
        limit = MAX_SIDECAR_BYTES - HOLD_ROOM_BYTES
        if hold_room and len(raw) > limit:
            # A hold already placed uses the room kept for it.
            bare = len(_dumps({**document, "legal_hold": None}))
            if bare > limit:
                raise SidecarTooLarge(bare, limit)
        return raw


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | RetentionPolicy):
        return str(value)
    return value


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = schemas.attr_schema("2")
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@cache
def _compiled_check() -> Callable[[dict[str, Any]], object]:
    """The attr.json v2 schema compiled to Python (fastjsonschema): every upload writes a
    sidecar, and interpreting the schema (jsonschema) cost more than the rest of deciding the
    upload. The schema uses only draft-07 keywords, so it is compiled as draft-07;
    tests/unit/storage/test_sidecar_schema.py checks that both agree."""
    schema = {**schemas.attr_schema("2"), "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(schema, formats={"uuid": _UUID})


def decode_sidecar(raw: bytes, *, key: str, element_id: str) -> Sidecar:
    """Read a sidecar of either version; v1 is migrated to v2 in memory."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"{key} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SidecarError(f"{key} is not a JSON object")
    if "schema_version" not in document:
        document = migrate_v1(document, key=key, element_id=element_id)
    try:
        return Sidecar.model_validate(document)
    except ValidationError as exc:
        raise SidecarError(f"{key} is not a valid attr.json: {exc.errors()[0]['msg']}") from None


def migrate_v1(document: dict[str, Any], *, key: str, element_id: str) -> dict[str, Any]:
    """v1 -> v2: add what v1 lacked, keep everything else (including unknown fields)."""
    out = dict(document)
    created = _aware(str(document.get("created_at")))
    out["schema_version"] = SCHEMA_VERSION
    out["created_at"] = created
    out["updated_at"] = _aware(document["updated_at"]) if document.get("updated_at") else created
    out["content_type"] = document.get("content_type") or "application/octet-stream"
    out["checksum"] = str(document.get("checksum", "")).lower()
    out["created_by_id"] = document.get("created_by_id") or "unknown"
    out["created_by_username"] = document.get("created_by_username") or "unknown"
    out["version"] = document.get("version") or 1
    out["storage_path"] = document.get("storage_path") or key.removesuffix(".attr.json")
    out["element_id"] = element_id
    out["retention_policy"] = RetentionPolicy.PERMANENT.value
    out.setdefault("ttl_expires_at", None)
    out.setdefault("custom_attributes", {})
    out["tags"] = document.get("tags") or []
    out["metadata"] = document.get("metadata") or {}
    return out


def _aware(value: str) -> str:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


class TemplateViolation(ValueError):
    """Custom attributes don't satisfy the element's template."""


class Templates:
    """The element's custom-attribute templates: JSON Schemas in ``.artstore/templates/``.

    A command names its template; without a name, ``default`` applies when the element has one.
    """

    DEFAULT = "default"

    def __init__(self, schemas_by_name: dict[str, dict[str, Any]]) -> None:
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        for name, schema in schemas_by_name.items():
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise TemplateViolation(
                    f"template {name!r} is not a JSON Schema: {exc.message}"
                ) from None
            self._validators[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)

    @property
    def names(self) -> list[str]:
        """Templates the element has."""
        return sorted(self._validators)

    def validate(self, attributes: dict[str, Any], template: str | None) -> None:
        """Raise :class:`TemplateViolation` naming the first problem."""
        name = template or self.DEFAULT
        validator = self._validators.get(name)
        if validator is None:
            if template is None:
                return
            known = ", ".join(self.names) or "none"
            raise TemplateViolation(f"template {template!r} does not exist (templates: {known})")
        errors = sorted(validator.iter_errors(attributes), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first.path) or "(root)"
            raise TemplateViolation(f"custom_attributes.{where}: {first.message} ({name})")
