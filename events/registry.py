"""Every event type ArtStore knows: its versioned ``type``, model, topic(s) and record key."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel

from events.envelope import Envelope, new_event_id
from events.models.audit import AuditRecorded
from events.models.cold import ElementArchived
from events.models.commands import (
    ChangeMode,
    DeleteFile,
    PlaceLegalHold,
    ReleaseLegalHold,
    UpdateMetadata,
    UploadRequested,
)
from events.models.elements import (
    ElementFull,
    ElementHeartbeat,
    ElementRegistered,
    ModeChanged,
    ModeChangeRejected,
)
from events.models.files import (
    ExpiryHeld,
    FileCommandRejected,
    FileDeleted,
    FileStored,
    FixityFailedV1,
    LegalHoldChanged,
    MetadataUpdated,
    UploadRejected,
)
from events.models.fixity import FixityChecked, FixityFailed, FixityRecovered
from events.models.restores import (
    FileRestored,
    RestoreExpired,
    RestoreExpiring,
    RestoreFailed,
    RestoreRequested,
    RestoreStaged,
    RestoreStarted,
)
from events.modes import upload_mode, upload_topic
from events.topics import Topic

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class EventSpec(Generic[M]):
    """What the contract says about one event type."""

    type: str
    model: builtins.type[M]
    kind: Literal["command", "fact"]
    topics: tuple[Topic, ...]
    key_of: Callable[[M], str]
    """The record key (and envelope ``subject``) for a payload."""
    route: Callable[[M], Topic]
    """The topic a payload is published to; one of ``topics``."""
    scope: str | None = None
    """The token scope a command requires (commands only)."""

    def envelope_model(self) -> builtins.type[Envelope[M]]:
        """The concrete envelope model for this type."""
        return _envelope_model(self.model)


@functools.cache
def _envelope_model(model: builtins.type[M]) -> builtins.type[Envelope[M]]:
    # Parametrising a generic model is a cache lookup in pydantic, but a slow one (it orders
    # the type arguments on every call): too slow for once per decoded record.
    return Envelope[model]  # type: ignore[valid-type]


def _fixed(topic: Topic) -> Callable[[Any], Topic]:
    return lambda _payload: topic


def _upload_route(payload: UploadRequested) -> Topic:
    return upload_topic(upload_mode(payload.retention_policy))


def _by_file_id(payload: Any) -> str:
    return str(payload.file_id)


def _by_stored_file(payload: FileStored | MetadataUpdated | LegalHoldChanged) -> str:
    return str(payload.file.file_id)


def _by_finding(payload: FixityFailed) -> str:
    # A stray object has no file id: its findings are keyed by where it is.
    if payload.file_id is not None:
        return str(payload.file_id)
    return f"{payload.element_id}:{payload.storage_path}"


def _by_element_id(payload: Any) -> str:
    return str(payload.element_id)


def _by_restore_element(payload: RestoreStaged) -> str:
    return payload.restore_element_id


def _by_subject(payload: AuditRecorded) -> str:
    return payload.subject


def _fact(type_: str, model: type[M], topic: Topic, key_of: Callable[[M], str]) -> EventSpec[M]:
    return EventSpec(type_, model, "fact", (topic,), key_of, _fixed(topic))


def _command(
    type_: str, model: type[M], topic: Topic, key_of: Callable[[M], str], scope: str
) -> EventSpec[M]:
    return EventSpec(type_, model, "command", (topic,), key_of, _fixed(topic), scope)


SPECS: tuple[EventSpec[Any], ...] = (
    # commands
    EventSpec(
        "artstore.upload.requested.v1",
        UploadRequested,
        "command",
        (Topic.UPLOADS_EDIT, Topic.UPLOADS_RW),
        _by_file_id,
        _upload_route,
        "files:write",
    ),
    _command(
        "artstore.file.update-metadata.v1",
        UpdateMetadata,
        Topic.FILE_COMMANDS,
        _by_file_id,
        "metadata:write",
    ),
    _command(
        "artstore.file.delete.v1", DeleteFile, Topic.FILE_COMMANDS, _by_file_id, "files:delete"
    ),
    _command(
        "artstore.file.place-legal-hold.v1",
        PlaceLegalHold,
        Topic.FILE_COMMANDS,
        _by_file_id,
        "files:hold",
    ),
    _command(
        "artstore.file.release-legal-hold.v1",
        ReleaseLegalHold,
        Topic.FILE_COMMANDS,
        _by_file_id,
        "files:hold",
    ),
    _command(
        "artstore.element.change-mode.v1",
        ChangeMode,
        Topic.ELEMENT_COMMANDS,
        _by_element_id,
        "elements:admin",
    ),
    _command(
        "artstore.file.restore-requested.v1",
        RestoreRequested,
        Topic.ELEMENT_COMMANDS,
        _by_element_id,
        "files:read",
    ),
    # facts about files
    _fact("artstore.file.stored.v1", FileStored, Topic.FILES, _by_stored_file),
    _fact("artstore.file.metadata-updated.v1", MetadataUpdated, Topic.FILES, _by_stored_file),
    _fact("artstore.file.deleted.v1", FileDeleted, Topic.FILES, _by_file_id),
    _fact("artstore.file.legal-hold-changed.v1", LegalHoldChanged, Topic.FILES, _by_stored_file),
    _fact("artstore.file.expiry-held.v1", ExpiryHeld, Topic.FILES, _by_file_id),
    _fact("artstore.upload.rejected.v1", UploadRejected, Topic.FILES, _by_file_id),
    _fact("artstore.file.command-rejected.v1", FileCommandRejected, Topic.FILES, _by_file_id),
    _fact("artstore.file.fixity-failed.v1", FixityFailedV1, Topic.FILES, _by_file_id),
    _fact("artstore.file.fixity-failed.v2", FixityFailed, Topic.FILES, _by_finding),
    _fact("artstore.file.fixity-recovered.v1", FixityRecovered, Topic.FILES, _by_file_id),
    _fact("artstore.file.restore-started.v1", RestoreStarted, Topic.FILES, _by_file_id),
    _fact("artstore.file.restored.v1", FileRestored, Topic.FILES, _by_file_id),
    _fact("artstore.file.restore-expiring.v1", RestoreExpiring, Topic.FILES, _by_file_id),
    _fact("artstore.file.restore-expired.v1", RestoreExpired, Topic.FILES, _by_file_id),
    _fact("artstore.file.restore-failed.v1", RestoreFailed, Topic.FILES, _by_file_id),
    _fact("artstore.restore.staged.v1", RestoreStaged, Topic.RESTORES, _by_restore_element),
    _fact("artstore.element.fixity-checked.v1", FixityChecked, Topic.ELEMENTS, _by_element_id),
    # facts about elements
    _fact("artstore.element.registered.v1", ElementRegistered, Topic.ELEMENTS, _by_element_id),
    _fact("artstore.element.heartbeat.v1", ElementHeartbeat, Topic.ELEMENTS, _by_element_id),
    _fact("artstore.element.mode-changed.v1", ModeChanged, Topic.ELEMENTS, _by_element_id),
    _fact(
        "artstore.element.mode-change-rejected.v1",
        ModeChangeRejected,
        Topic.ELEMENTS,
        _by_element_id,
    ),
    _fact("artstore.element.full.v1", ElementFull, Topic.ELEMENTS, _by_element_id),
    _fact("artstore.element.archived.v1", ElementArchived, Topic.ELEMENTS, _by_element_id),
    # audit
    _fact("artstore.audit.recorded.v1", AuditRecorded, Topic.AUDIT, _by_subject),
)

BY_TYPE: Mapping[str, EventSpec[Any]] = {spec.type: spec for spec in SPECS}
BY_MODEL: Mapping[type[BaseModel], EventSpec[Any]] = {spec.model: spec for spec in SPECS}


class UnknownEventModel(TypeError):
    """A payload class that is not part of the contract was used as an event."""


def spec_for(payload: BaseModel | type[BaseModel]) -> EventSpec[Any]:
    """The spec of a payload (instance or class)."""
    model = payload if isinstance(payload, type) else type(payload)
    try:
        return BY_MODEL[model]
    except KeyError:
        raise UnknownEventModel(f"{model.__name__} is not a registered event payload") from None


def new_event(
    payload: M,
    *,
    source: str,
    correlation_id: str | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> Envelope[M]:
    """Wrap a payload in an envelope with its registered type and subject.

    ``correlation_id`` defaults to the new event's id, starting a new chain.
    """
    spec = spec_for(payload)
    eid = event_id or new_event_id()
    envelope_model: type[Envelope[M]] = spec.envelope_model()
    return envelope_model(
        id=eid,
        type=spec.type,
        source=source,
        time=time or datetime.now(UTC),
        subject=spec.key_of(payload),
        correlation_id=correlation_id or eid,
        data=payload,
    )
