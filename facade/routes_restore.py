"""Restore on request: ask for an archived file back, and follow the restore.

``POST /api/v1/files/{id}/restore`` (scope ``files:read``) queues a ``RestoreRequested`` for the
file's ar element with the caller's token and answers 202 with the restore's id and status; a
request for a file that already has a restore pending joins it (same id). ``GET
/api/v1/restores/{id}`` shows ``queued -> in_progress -> restored -> expired`` (or ``failed``
with a reason). An account may restore, and see the restores of, the files it uploaded; an
admin any. Anything else is answered as unknown (404), revealing nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request, Response

from auth import may_change_file
from base.openapi import problems
from consumers import RestoreStep, queued_restore
from events import (
    RESTORE_RANK,
    EventTooLarge,
    Mode,
    RestoreRequested,
    RestoreStatus,
    new_event,
)
from facade import queries
from facade.problems import Conflict, Gone, NotFound, Unavailable
from facade.routes_read import json_response, runtime_of
from facade.security import Caller, requires

router = APIRouter(prefix="/api/v1", responses=problems(400, 401, 403, 429, 503))
SOURCE = "artstore/facade"
ReadCaller = Annotated[Caller, Depends(requires("files:read"))]


def _links(restore_id: UUID, file_id: UUID) -> dict[str, str]:
    return {
        "self": f"/api/v1/restores/{restore_id}",
        "file": f"/api/v1/files/{file_id}",
        "content": f"/api/v1/files/{file_id}/content",
    }


@router.post(
    "/files/{file_id}/restore",
    status_code=202,
    summary="Restore an archived file's content for a while (30 days by default)",
    responses=problems(404, 409, 410),
)
async def request_restore(file_id: UUID, request: Request, caller: ReadCaller) -> Response:
    runtime = runtime_of(request)
    claims = caller.claims
    async with runtime.pool.acquire() as conn:
        row = await queries.file_row(conn, file_id)
    if row is None or not may_change_file(claims.role, claims.client_id, row["created_by_id"]):
        raise NotFound(f"no file {file_id} is known to the index")
    if row["deleted_at"] is not None:
        raise Gone(f"file {file_id} was deleted at {row['deleted_at'].isoformat()}")
    element, mode = row["element_id"], row["element_mode"]
    if mode != Mode.AR.value:
        raise Conflict(
            f"file {file_id} is on element {element}, which is in mode {mode}: its content is "
            "online, download it instead",
            reason="not_archived",
            element_id=element,
        )
    command = RestoreRequested(
        restore_id=uuid.uuid4(),
        file_id=file_id,
        element_id=element,
        requested_by=claims.client_id,
        requested_at=datetime.now(UTC),
    )
    restore_id, status = await runtime.store.queue_restore(queued_restore(command))
    joined = restore_id != command.restore_id
    if not joined:
        envelope = new_event(command, source=SOURCE)
        try:
            await runtime.publisher.publish(envelope, token=caller.token)
        except (KafkaError, EventTooLarge) as exc:
            await runtime.store.record_uploads([_not_queued(command, str(exc))])
            raise Unavailable(f"the restore could not be queued: {exc}; retry later") from None
    request.state.audit_details = {"restore_id": str(restore_id), "joined": joined}
    url = f"/api/v1/restores/{restore_id}"
    body = {
        "restore_id": str(restore_id),
        "file_id": str(file_id),
        "status": status,
        "joined": joined,
        "status_url": url,
        "links": _links(restore_id, file_id),
    }
    return json_response(queries.dumps(body), 202, headers={"Location": url})


def _not_queued(command: RestoreRequested, error: str) -> RestoreStep:
    return RestoreStep(
        restore_id=command.restore_id,
        file_id=command.file_id,
        status=RestoreStatus.FAILED.value,
        rank=RESTORE_RANK[RestoreStatus.FAILED],
        status_at=datetime.now(UTC),
        reason="not_queued",
        detail=f"the request could not be queued: {error}"[:2000],
    )


@router.get(
    "/restores/{restore_id}",
    summary="A restore's status: queued, in_progress, restored, expired or failed",
    responses=problems(404),
)
async def restore_status(restore_id: UUID, request: Request, caller: ReadCaller) -> Response:
    runtime = runtime_of(request)
    claims = caller.claims
    async with runtime.pool.acquire() as conn:
        row = await queries.restore_row(conn, restore_id)
    if row is None or not may_change_file(claims.role, claims.client_id, row["requested_by"]):
        raise NotFound(f"no restore {restore_id} is known")
    body: dict[str, Any] = {k: v for k, v in row.items() if k != "status_rank"}
    body["links"] = _links(restore_id, row["file_id"])
    return json_response(queries.dumps(body))
