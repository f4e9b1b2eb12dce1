"""A document's versions and a file's legal hold (docs/lifecycle.md).

``GET /api/v1/files/{id}/versions`` lists every version of the file's document;
``POST``/``DELETE /api/v1/files/{id}/legal-hold`` publish PlaceLegalHold/ReleaseLegalHold
(scope ``files:hold``), answered by the element's worker, which has the last word.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from base.openapi import problems
from events import PlaceLegalHold, ReleaseLegalHold
from facade import queries
from facade.problems import Conflict, NotFound
from facade.routes_read import json_response, live_file, runtime_of
from facade.routes_write import accepted, publish_command
from facade.security import Caller, requires

router = APIRouter(prefix="/api/v1", responses=problems(400, 401, 403, 429, 503))
HoldCaller = Annotated[Caller, Depends(requires("files:hold"))]
ReadCaller = Annotated[Caller, Depends(requires("files:read"))]


class HoldRequest(BaseModel):
    """Why the file is held (a case, a matter, an order)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


@router.get(
    "/files/{file_id}/versions",
    summary="Every version of the document a file belongs to, oldest first",
    responses=problems(404),
)
async def versions(file_id: UUID, request: Request, caller: ReadCaller) -> Response:
    async with runtime_of(request).pool.acquire() as conn:
        rows = await queries.document_versions(conn, file_id)
    if not rows:
        raise NotFound(f"no file {file_id} is known to the index")
    live = [r for r in rows if r["deleted_at"] is None]
    body = {
        "document_id": rows[0]["document_id"],
        "latest": live[-1]["file_id"] if live else None,
        "versions": [{**r, "links": {"self": f"/api/v1/files/{r['file_id']}"}} for r in rows],
    }
    return json_response(queries.dumps(body))


@router.post(
    "/files/{file_id}/legal-hold",
    status_code=202,
    summary="Place a legal hold on a file (scope files:hold; any element mode)",
    responses=problems(404, 410, 413),
)
async def place_hold(
    file_id: UUID, hold: HoldRequest, request: Request, caller: HoldCaller
) -> Response:
    runtime = runtime_of(request)
    row = await live_file(runtime, file_id)
    command = PlaceLegalHold(file_id=file_id, element_id=row["element_id"], reason=hold.reason)
    return accepted(file_id, await publish_command(runtime, command, caller))


@router.delete(
    "/files/{file_id}/legal-hold",
    status_code=202,
    summary="Release a file's legal hold (scope files:hold)",
    responses=problems(404, 409, 410, 413),
)
async def release_hold(
    file_id: UUID,
    request: Request,
    caller: HoldCaller,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> Response:
    runtime = runtime_of(request)
    row = await live_file(runtime, file_id)
    if row["legal_hold"] is None:
        raise Conflict(f"file {file_id} is not under legal hold", reason="not_held")
    command = ReleaseLegalHold(file_id=file_id, element_id=row["element_id"], reason=reason)
    return accepted(file_id, await publish_command(runtime, command, caller))
