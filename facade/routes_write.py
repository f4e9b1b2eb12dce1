"""Write endpoints: each publishes a command with the caller's token and answers 202."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auth import may_change_file, not_owner_detail
from base.openapi import problems
from consumers import queued_upload
from events import (
    ChangeMode,
    DeleteFile,
    EventTooLarge,
    FileStagedObject,
    Mode,
    RetentionPolicy,
    UpdateMetadata,
    UploadRequested,
    new_event,
    staged_key,
)
from events.modes import Operation, mode_allows
from facade import metrics, queries
from facade.problems import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    utc_parameter,
)
from facade.routes_read import json_response, live_file, runtime_of
from facade.runtime import FacadeRuntime
from facade.security import Caller, Forbidden, requires

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", responses=problems(400, 401, 403, 429, 503))
SOURCE = "artstore/facade"


class MetadataChanges(BaseModel):
    """Fields to change; omitted ones stay as they are."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=1000)
    tags: list[str] | None = Field(None, max_length=50)
    metadata: dict[str, Any] | None = None
    custom_attributes: dict[str, Any] | None = None
    expected_version: int | None = Field(None, ge=1)


class ModeChangeRequest(BaseModel):
    """Move an element to another mode (ro -> rw needs ``confirm``)."""

    model_config = ConfigDict(extra="forbid")

    target_mode: Mode
    reason: str = Field(min_length=1, max_length=500)
    confirm: bool = False


def _invalid(exc: ValidationError) -> BadRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return BadRequest(where, first["msg"])


async def publish_command(runtime: FacadeRuntime, payload: Any, caller: Caller) -> str:
    envelope = new_event(payload, source=SOURCE)
    try:
        await runtime.publisher.publish(envelope, token=caller.token)
    except EventTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except KafkaError as exc:
        raise Unavailable(f"the command could not be queued: {exc}; retry later") from None
    return envelope.id


def _check_owner(row: Any, file_id: UUID, caller: Caller) -> None:
    """403 unless the caller may change the file (SPEC §3 ownership). The element's worker
    checks again against the sidecar and has the last word."""
    claims, uploaded_by = caller.claims, row["created_by_id"]
    if not may_change_file(claims.role, claims.client_id, uploaded_by):
        raise Forbidden(
            not_owner_detail(file_id, claims.client_id, uploaded_by), reason="not_owner"
        )


def _retain_until(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    value = utc_parameter("retain_until", value)
    if value <= datetime.now(UTC):
        raise BadRequest("retain_until", "must be in the future")
    return value


async def check_version_of(runtime: FacadeRuntime, version_of: UUID, caller: Caller) -> None:
    """Refuse an upload whose ``version_of`` the index shows it may not have: unknown, not the
    caller's (the same 404, revealing nothing) or deleted (409). The element's worker checks
    again in the document registry and has the last word; a document too new for the index
    is refused here, and can be tried again once its upload's status is ``stored``."""
    async with runtime.pool.acquire() as conn:
        rows = await queries.document_versions(conn, version_of)
    claims = caller.claims
    owner = str(rows[0]["created_by_id"]) if rows else None
    if owner is None or not may_change_file(claims.role, claims.client_id, owner):
        raise NotFound(
            f"version_of: no stored document with file {version_of} that {claims.client_id} "
            "may add a version to",
            reason="unknown_document",
        )
    if all(r["deleted_at"] is not None for r in rows):
        raise Conflict(
            f"version_of: document {rows[0]['document_id']} (of file {version_of}) was "
            "deleted: none of its versions is left; upload the file as a new document",
            reason="document_deleted",
        )


def _json_param(name: str, raw: str | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest(name, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise BadRequest(name, "must be a JSON object")
    return value


@router.post(
    "/uploads",
    status_code=202,
    responses=problems(404, 409, 413),
    summary="Upload a file: the request body is the content, streamed to staging",
)
async def upload(
    request: Request,
    caller: Annotated[Caller, Depends(requires("files:write"))],
    filename: Annotated[str, Query(min_length=1, max_length=1024)],
    retention_policy: RetentionPolicy = RetentionPolicy.PERMANENT,
    ttl_days: Annotated[int | None, Query(ge=1, le=365)] = None,
    description: Annotated[str | None, Query(max_length=1000)] = None,
    tags: Annotated[list[str] | None, Query(max_length=50)] = None,
    custom_attributes: Annotated[str | None, Query(description="A JSON object.")] = None,
    metadata: Annotated[str | None, Query(description="A JSON object.")] = None,
    template: Annotated[str | None, Query(max_length=64)] = None,
    checksum: Annotated[
        str | None, Query(pattern=r"^[0-9a-f]{64}$", description="Expected sha256 (hex).")
    ] = None,
    version_of: Annotated[
        UUID | None,
        Query(description="Store as the next version of the document this file belongs to."),
    ] = None,
    retain_until: Annotated[
        datetime | None,
        Query(description="Permanent files: the end of the retention period (ISO 8601)."),
    ] = None,
) -> Response:
    runtime = runtime_of(request)
    declared = request.headers.get("content-length") or ""
    too_long = len(declared) > len(str(runtime.facade.max_upload_bytes))
    if (
        declared.isascii()
        and declared.isdigit()
        and (too_long or int(declared) > runtime.facade.max_upload_bytes)
    ):
        raise PayloadTooLarge(f"uploads are limited to {runtime.facade.max_upload_bytes} bytes")
    file_id = uuid.uuid4()
    fields: dict[str, Any] = {
        "file_id": file_id,
        "original_filename": filename,
        "content_type": request.headers.get("content-type") or "application/octet-stream",
        "retention_policy": retention_policy,
        "ttl_days": ttl_days,
        "description": description,
        "tags": tags or [],
        "custom_attributes": _json_param("custom_attributes", custom_attributes),
        "metadata": _json_param("metadata", metadata),
        "template": template,
        "created_by_fullname": caller.claims.name,
        "version_of": version_of,
        "retain_until": _retain_until(retain_until),
    }
    try:  # refuse a bad command before reading a byte of the body
        UploadRequested(
            **fields, file_size=0, checksum="0" * 64, staged=FileStagedObject(path="check")
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    if version_of is not None:
        await check_version_of(runtime, version_of, caller)
    # The caller's own namespace: workers honour no claim check outside it.
    key = staged_key(caller.claims.client_id, file_id, datetime.now(UTC))
    staged = await runtime.staging.stage(
        key, request.stream(), max_bytes=runtime.facade.max_upload_bytes
    )
    metrics.STAGED_BYTES.inc(staged.size)
    if checksum is not None and checksum != staged.sha256:
        await runtime.staging.discard(staged.staged)
        raise BadRequest("checksum", f"the body's sha256 is {staged.sha256}, not {checksum}")
    command = UploadRequested(
        **fields, file_size=staged.size, checksum=staged.sha256, staged=staged.staged
    )
    envelope = new_event(command, source=SOURCE)
    try:
        await runtime.publisher.publish(envelope, token=caller.token)
    except (KafkaError, EventTooLarge) as exc:
        await runtime.staging.discard(staged.staged)
        raise Unavailable(f"the upload could not be queued: {exc}; retry later") from None
    # Show "queued" at once, exactly as the projector will record it from the command.
    try:
        await runtime.store.record_uploads(
            [queued_upload(command, at=envelope.time, correlation_id=envelope.correlation_id)]
        )
    except Exception as exc:  # the projector records it anyway; only the first poll may 404
        log.warning("upload status not recorded early", extra={"error": str(exc)})
    status_url = f"/api/v1/uploads/{file_id}"
    body = {
        "file_id": str(file_id),
        "status": "queued",
        "status_url": status_url,
        "file_size": staged.size,
        "checksum": staged.sha256,
    }
    return json_response(queries.dumps(body), 202, headers={"Location": status_url})


@router.patch(
    "/files/{file_id}",
    status_code=202,
    summary="Change a file's metadata",
    responses=problems(404, 409, 410, 413),
)
async def update_metadata(
    file_id: UUID,
    changes: MetadataChanges,
    request: Request,
    caller: Annotated[Caller, Depends(requires("metadata:write"))],
) -> Response:
    runtime = runtime_of(request)
    row = await live_file(runtime, file_id)
    _check_owner(row, file_id, caller)
    if not mode_allows(row["element_mode"], Operation.UPDATE_METADATA):
        raise Conflict(
            f"file {file_id} is on element {row['element_id']}, which is {row['element_mode']}: "
            "its metadata is frozen",
            reason="element_mode",
        )
    try:
        command = UpdateMetadata(
            file_id=file_id, element_id=row["element_id"], **changes.model_dump(exclude_none=True)
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    command_id = await publish_command(runtime, command, caller)
    return accepted(file_id, command_id)


@router.delete(
    "/files/{file_id}",
    status_code=202,
    summary="Delete a file (edit elements only)",
    responses=problems(404, 409, 410, 413),
)
async def delete_file(
    file_id: UUID,
    request: Request,
    caller: Annotated[Caller, Depends(requires("files:delete"))],
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    runtime = runtime_of(request)
    row = await live_file(runtime, file_id)
    _check_owner(row, file_id, caller)
    hold = row["legal_hold"]
    if hold is not None:
        raise Conflict(
            f"file {file_id} is under legal hold (placed by {hold.get('placed_by')} at "
            f"{hold.get('placed_at')}: {hold.get('reason')}); it cannot be deleted until the "
            "hold is released (scope files:hold)",
            reason="legal_hold",
            hold_reason=hold.get("reason"),
        )
    mode = row["element_mode"]
    if not mode_allows(mode, Operation.DELETE):
        raise Conflict(
            f"file {file_id} is on element {row['element_id']}, which is {mode}: "
            "files are deleted only from edit elements",
            reason="element_mode",
        )
    command = DeleteFile(file_id=file_id, element_id=row["element_id"], reason=reason)
    command_id = await publish_command(runtime, command, caller)
    return accepted(file_id, command_id)


def accepted(file_id: UUID, command_id: str) -> Response:
    url = f"/api/v1/files/{file_id}"
    body = {"file_id": str(file_id), "command_id": command_id, "status_url": url}
    return json_response(queries.dumps(body), 202, headers={"Location": url})


@router.post(
    "/elements/{element_id}/mode",
    status_code=202,
    summary="Change an element's mode",
    responses=problems(404, 409, 413),
)
async def change_mode(
    element_id: str,
    change: ModeChangeRequest,
    request: Request,
    caller: Annotated[Caller, Depends(requires("elements:admin"))],
) -> Response:
    runtime = runtime_of(request)
    try:
        command = ChangeMode(element_id=element_id, **change.model_dump())
    except ValidationError as exc:
        raise _invalid(exc) from None
    async with runtime.pool.acquire() as conn:
        if await queries.element_row(conn, element_id) is None:
            raise NotFound(f"no element {element_id} is known")
    command_id = await publish_command(runtime, command, caller)
    body = {
        "element_id": element_id,
        "command_id": command_id,
        "status_url": "/api/v1/elements",
    }
    return json_response(queries.dumps(body), 202)
