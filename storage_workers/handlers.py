"""Decisions about commands, free of Kafka, disks and clocks (everything is passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from auth import may_change_file, not_owner_detail
from events import (
    ChangeMode,
    DeleteFile,
    LegalHold,
    Mode,
    RejectionReason,
    RetentionPolicy,
    UpdateMetadata,
    UploadRequested,
)
from events.modes import Operation, allows, check_transition, modes_allowing, upload_mode
from storage_workers.capacity import Capacity
from storage_workers.catalogue import CatalogueEntry
from storage_workers.naming import storage_filename, storage_path
from storage_workers.sidecar import (
    Sidecar,
    SidecarError,
    SidecarTooLarge,
    Templates,
    TemplateViolation,
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a command, from its verified token."""

    client_id: str
    username: str
    role: str = ""
    """The token's role: ``admin`` may change any file, every other role only its own."""

    def may_change(self, uploaded_by: str) -> bool:
        """Whether this caller may update or delete a file ``uploaded_by`` uploaded."""
        return may_change_file(self.role, self.client_id, uploaded_by)


@dataclass(frozen=True, slots=True)
class ElementView:
    """What a decision needs to know about the element right now."""

    element_id: str
    mode: Mode
    capacity: Capacity
    templates: Templates


@dataclass(frozen=True, slots=True)
class Store:
    """Write this new file."""

    sidecar: Sidecar
    encoded: bytes
    """The sidecar as it will be written (validated, within the size limit)."""


@dataclass(frozen=True, slots=True)
class AlreadyDone:
    """The command was applied before (a redelivery): re-announce, write nothing."""


@dataclass(frozen=True, slots=True)
class Reject:
    """The command can never succeed."""

    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class HandBack:
    """This element can't take the upload now, another may: leave it on the topic."""

    detail: str


UploadDecision = Store | AlreadyDone | Reject | HandBack


@dataclass(frozen=True, slots=True)
class DocumentLink:
    """The document a new file belongs to and its version of it."""

    document_id: UUID
    version: int


@dataclass(frozen=True, slots=True)
class Owned:
    """This element holds the upload's claim: it may write the file."""


@dataclass(frozen=True, slots=True)
class StoredElsewhere:
    """Another element already stored the upload: re-announce it from there."""

    element_id: str


@dataclass(frozen=True, slots=True)
class BusyElsewhere:
    """Another live element is writing the upload: leave it on the topic, try again later."""

    detail: str


@dataclass(frozen=True, slots=True)
class TakeOver:
    """Another element claimed the upload but is gone (or its claim outlived the lease)."""

    previous_owner: str


ClaimDecision = Owned | StoredElsewhere | BusyElsewhere | TakeOver | Reject


def decide_claim(
    *,
    me: str,
    owner: str,
    owner_checksum: str,
    checksum: str,
    stored: bool,
    owner_live: bool,
    claim_age_s: float,
    lease_s: float,
    file_id: object,
) -> ClaimDecision:
    """What to do with an upload whose claim (see :mod:`~storage_workers.claims`) says
    ``owner`` holds it (``stored``) or is writing it."""
    if owner == me:
        return Owned()
    if owner_checksum != checksum:
        return Reject(
            RejectionReason.DUPLICATE_FILE_ID,
            f"file {file_id} is already claimed by element {owner} with another checksum",
        )
    if stored:
        return StoredElsewhere(owner)
    if not owner_live or claim_age_s > lease_s:
        return TakeOver(owner)
    return BusyElsewhere(
        f"file {file_id} is being stored by element {owner} (claimed {claim_age_s:.0f} s ago)"
    )


def decide_upload(
    command: UploadRequested,
    *,
    element: ElementView,
    existing: CatalogueEntry | None,
    deleted: bool,
    caller: Caller,
    now: datetime,
    document: DocumentLink | None = None,
) -> UploadDecision:
    """May this element store the upload, and what will its sidecar say? ``document``: the
    document a version belongs to and its number, as the document registry reserved them
    (None: a new document, of which this file is version 1)."""
    if existing is not None:
        if existing.checksum == command.checksum:
            return AlreadyDone()
        return Reject(
            RejectionReason.DUPLICATE_FILE_ID,
            f"file {command.file_id} is already stored with another checksum",
        )
    if deleted:
        return Reject(
            RejectionReason.DUPLICATE_FILE_ID,
            f"file {command.file_id} was stored on {element.element_id} and later deleted",
        )
    if not allows(element.mode, Operation.UPLOAD):
        return HandBack(f"element {element.element_id} is {element.mode.value}")
    wanted = upload_mode(command.retention_policy)
    if element.mode is not wanted:
        return Reject(
            RejectionReason.ELEMENT_MODE,
            f"{command.retention_policy.value} uploads go to {wanted.value} elements; "
            f"{element.element_id} is {element.mode.value}",
        )
    if command.file_size > element.capacity.capacity_bytes - element.capacity.full_floor:
        return Reject(
            RejectionReason.ELEMENT_FULL,
            f"{command.file_size} bytes can never fit on {element.element_id} "
            f"(capacity {element.capacity.capacity_bytes} bytes)",
        )
    if not element.capacity.fits(command.file_size):
        return HandBack(
            f"element {element.element_id} has {element.capacity.free_bytes} bytes free, "
            f"not enough for {command.file_size} above its full floor"
        )
    try:
        element.templates.validate(dict(command.custom_attributes), command.template)
    except TemplateViolation as exc:
        return Reject(RejectionReason.TEMPLATE_VIOLATION, str(exc))
    name = storage_filename(command.original_filename, caller.username, now, command.file_id)
    link = document or DocumentLink(command.file_id, 1)
    ttl = (
        now + timedelta(days=command.ttl_days)
        if command.retention_policy is RetentionPolicy.TEMPORARY and command.ttl_days
        else None
    )
    try:
        sidecar = Sidecar(
            file_id=command.file_id,
            original_filename=command.original_filename,
            storage_filename=name,
            file_size=command.file_size,
            content_type=command.content_type,
            checksum=command.checksum,
            created_at=now,
            updated_at=now,
            created_by_id=caller.client_id,
            created_by_username=caller.username,
            created_by_fullname=command.created_by_fullname,
            description=command.description,
            version=1,
            storage_path=storage_path(now, name),
            element_id=element.element_id,
            retention_policy=command.retention_policy,
            ttl_expires_at=ttl,
            tags=list(command.tags),
            metadata=dict(command.metadata),
            custom_attributes=dict(command.custom_attributes),
            document_id=link.document_id,
            document_version=link.version,
            retain_until=command.retain_until,
        )
        encoded = sidecar.encode()
    except SidecarTooLarge as exc:
        return Reject(RejectionReason.SIDECAR_TOO_LARGE, str(exc))
    except SidecarError as exc:
        return Reject(RejectionReason.INVALID_PAYLOAD, str(exc))
    return Store(sidecar, encoded)


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Replace the sidecar with this one."""

    sidecar: Sidecar
    encoded: bytes


def decide_update(
    command: UpdateMetadata,
    *,
    element: ElementView,
    current: Sidecar | None,
    command_id: str,
    caller: Caller,
    now: datetime,
) -> Rewrite | AlreadyDone | Reject:
    """The sidecar after an UpdateMetadata, or why not."""
    if current is None:
        return Reject(
            RejectionReason.FILE_NOT_FOUND,
            f"file {command.file_id} is not on element {element.element_id}",
        )
    if not caller.may_change(current.created_by_id):
        return Reject(
            RejectionReason.NOT_OWNER,
            not_owner_detail(command.file_id, caller.client_id, current.created_by_id),
        )
    if current.extras.get("last_command_id") == command_id:
        return AlreadyDone()
    if not allows(element.mode, Operation.UPDATE_METADATA):
        return Reject(
            RejectionReason.ELEMENT_MODE, _mode_detail(element, Operation.UPDATE_METADATA)
        )
    if command.expected_version is not None and command.expected_version != current.version:
        return Reject(
            RejectionReason.VERSION_CONFLICT,
            f"file {command.file_id} is at version {current.version}, "
            f"not {command.expected_version}",
        )
    changes: dict[str, Any] = {
        "version": current.version + 1,
        "updated_at": now,
        "last_command_id": command_id,
    }
    if command.description is not None:
        changes["description"] = command.description
    if command.tags is not None:
        changes["tags"] = list(command.tags)
    if command.metadata is not None:
        changes["metadata"] = dict(command.metadata)
    if command.custom_attributes is not None:
        changes["custom_attributes"] = dict(command.custom_attributes)
        try:
            element.templates.validate(changes["custom_attributes"], current.extras.get("template"))
        except TemplateViolation as exc:
            return Reject(RejectionReason.TEMPLATE_VIOLATION, str(exc))
    try:
        updated = current.replace(**changes)
        encoded = updated.encode()
    except SidecarTooLarge as exc:
        return Reject(RejectionReason.SIDECAR_TOO_LARGE, str(exc))
    except (SidecarError, ValueError) as exc:
        return Reject(RejectionReason.INVALID_PAYLOAD, str(exc))
    return Rewrite(updated, encoded)


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete the file at this path."""

    storage_path: str


def decide_delete(
    command: DeleteFile,
    *,
    element: ElementView,
    current: CatalogueEntry | None,
    uploaded_by: str | None,
    deleted: bool,
    caller: Caller,
    hold: LegalHold | None = None,
) -> Remove | AlreadyDone | Reject:
    """May the file be deleted? ``uploaded_by`` is its sidecar's ``created_by_id`` (``None``
    when the sidecar could not be read: then only an admin may delete it); ``hold``, its
    legal hold (then nobody may, nor when only the catalogue still knows of it)."""
    if current is None:
        if deleted:
            return AlreadyDone()
        return Reject(
            RejectionReason.FILE_NOT_FOUND,
            f"file {command.file_id} is not on element {element.element_id}",
        )
    if uploaded_by is None and caller.role != "admin":
        return Reject(
            RejectionReason.NOT_OWNER,
            f"the uploader of file {command.file_id} cannot be read; only an admin may delete it",
        )
    if uploaded_by is not None and not caller.may_change(uploaded_by):
        return Reject(
            RejectionReason.NOT_OWNER,
            not_owner_detail(command.file_id, caller.client_id, uploaded_by),
        )
    if hold is not None:
        return Reject(RejectionReason.LEGAL_HOLD, hold_detail(command.file_id, hold))
    if current.held:  # the sidecar, with the hold's reason, could not be read
        since = f"since {current.hold_placed_at}; its sidecar cannot be read"
        return Reject(
            RejectionReason.LEGAL_HOLD, f"file {command.file_id} is under legal hold ({since})"
        )
    if not allows(element.mode, Operation.DELETE):
        return Reject(RejectionReason.ELEMENT_MODE, _mode_detail(element, Operation.DELETE))
    return Remove(current.storage_path)


def hold_detail(file_id: object, hold: LegalHold) -> str:
    """Why a held file may not go, with the hold's own reason."""
    return (
        f"file {file_id} is under legal hold (placed by {hold.placed_by} at "
        f"{hold.placed_at.isoformat()}: {hold.reason}); it cannot be deleted or expire until "
        "the hold is released (scope files:hold)"
    )


@dataclass(frozen=True, slots=True)
class SwitchMode:
    """Move the element to ``target``."""

    target: Mode


@dataclass(frozen=True, slots=True)
class RefuseMode:
    """An illegal transition, with the legal ones."""

    reason: str
    allowed: list[Mode]


def decide_mode_change(command: ChangeMode, *, current: Mode) -> SwitchMode | RefuseMode:
    """Apply the transition rules of SPEC §3."""
    refused = check_transition(current, command.target_mode, confirm=command.confirm)
    if refused is not None:
        return RefuseMode(refused.reason, refused.allowed)
    return SwitchMode(command.target_mode)


def _mode_detail(element: ElementView, operation: Operation) -> str:
    allowed = ", ".join(m.value for m in modes_allowing(operation))
    return (
        f"element {element.element_id} is {element.mode.value}; "
        f"{operation.value.replace('_', ' ')} needs mode {allowed}"
    )
