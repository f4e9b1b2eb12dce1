"""Read endpoints: search, metadata, content, upload status, elements."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from base.openapi import body, empty, merged, problems
from events import new_event
from events.modes import Operation, mode_allows
from events.uploads import UploadState
from facade import metrics, queries
from facade.fixity import refuse_if_failed, verified
from facade.http_semantics import (
    Unsatisfiable,
    content_disposition,
    entity_tag,
    http_date,
    if_match_fails,
    if_range_holds,
    none_match,
    parse_range,
)
from facade.problems import Conflict, Gone, NotFound, Problem, RangeNotSatisfiable, Unavailable
from facade.runtime import FacadeRuntime
from facade.search import parse_search
from facade.security import Caller, requires
from storage_workers import ByteRange, ObjectMissing

router = APIRouter(prefix="/api/v1", responses=problems(400, 401, 403, 429, 503))
ReadCaller = Annotated[Caller, Depends(requires("files:read"))]
UploadCaller = Annotated[Caller, Depends(requires("files:write", "files:read", any_of=True))]


class PreconditionFailed(Problem):
    status = 412
    title = "Precondition failed"


def runtime_of(request: Request) -> FacadeRuntime:
    runtime: FacadeRuntime = request.app.state.runtime
    return runtime


def json_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@router.get(
    "/search",
    summary="Search files",
    description=(
        '`q` uses web-search syntax (words, "phrases", -exclusions, or), English and Russian '
        "stemmed. Filters: filename (substring), extension, tag/tags (all of), username, "
        "size_min/size_max (bytes), created_from/created_to (ISO 8601), element, "
        "retention_policy, language, attr.<key>=<value>. sort: relevance (with q), created_at, "
        "file_size, filename, '-' for descending. limit, and cursor from the previous page."
    ),
)
async def search(request: Request, caller: ReadCaller) -> Response:
    runtime = runtime_of(request)
    spec = parse_search(
        list(request.query_params.multi_items()),
        default_limit=runtime.facade.page_size,
        max_limit=runtime.facade.max_page_size,
        max_query_length=runtime.facade.max_query_length,
    )
    cached, slot = await runtime.cache.get(spec.cache_key())
    if cached is not None:
        metrics.SEARCH_CACHE.labels("hit").inc()
        return json_response(cached, headers={"X-Cache": "hit"})
    metrics.SEARCH_CACHE.labels("miss").inc()
    try:
        async with runtime.pool.acquire() as conn:
            page = await queries.search(conn, spec, rank_candidates=runtime.facade.rank_candidates)
    except asyncpg.QueryCanceledError:
        raise Unavailable(
            "the search took too long; add filters or a more specific query"
        ) from None
    body = queries.dumps(
        {
            "items": [{**item, "links": _file_links(item["file_id"])} for item in page.items],
            "next_cursor": page.next_cursor,
            "sort": ("-" if spec.descending else "") + spec.sort,
            "ranked_candidates_capped": page.candidates_capped,
        }
    )
    await runtime.cache.put(slot, body)
    return json_response(body, headers={"X-Cache": "miss"})


def _file_links(file_id: str) -> dict[str, str]:
    return {"self": f"/api/v1/files/{file_id}", "content": f"/api/v1/files/{file_id}/content"}


async def live_file(runtime: FacadeRuntime, file_id: UUID) -> asyncpg.Record:
    async with runtime.pool.acquire() as conn:
        row = await queries.file_row(conn, file_id)
    if row is None:
        raise NotFound(f"no file {file_id} is known to the index")
    if row["deleted_at"] is not None:
        raise Gone(
            f"file {file_id} was deleted at {row['deleted_at'].isoformat()} "
            f"by {row['deleted_by']} ({row['deletion_reason']})"
        )
    return row


@router.get(
    "/files/{file_id}",
    summary="A file's metadata (its attr.json)",
    responses=merged(empty(304), problems(404, 410)),
)
async def file_metadata(file_id: UUID, request: Request, caller: ReadCaller) -> Response:
    row = await live_file(runtime_of(request), file_id)
    etag = f'W/"v{row["version"]}"'
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return json_response(queries.dumps(queries.sidecar(row)), headers={"ETag": etag})


@router.get(
    "/files/{file_id}/content",
    summary="A file's content (single byte ranges, conditional requests)",
    response_class=StreamingResponse,
    operation_id="file_content",
    responses=merged(
        body(200, "*/*"), body(206, "*/*"), empty(304), problems(404, 409, 410, 412, 416)
    ),
)
@router.head(
    "/files/{file_id}/content",
    summary="A file's content headers",
    response_class=StreamingResponse,
    operation_id="file_content_head",
    responses=merged(
        body(200, "*/*"), body(206, "*/*"), empty(304), problems(404, 409, 410, 412, 416)
    ),
)
async def file_content(file_id: UUID, request: Request, caller: ReadCaller) -> Response:
    runtime = runtime_of(request)
    row = await live_file(runtime, file_id)
    element, path, announced = row["element_id"], row["storage_path"], row["element_backend"]
    if not mode_allows(row["element_mode"], Operation.READ_CONTENT):
        async with runtime.pool.acquire() as conn:
            restored = await queries.restored_copy(conn, file_id)
        if restored is None:
            raise Conflict(
                f"file {file_id} is on element {element}, which is archived (mode ar): its "
                f"content is offline. Its metadata stays readable; POST "
                f"/api/v1/files/{file_id}/restore to have it restored for a while.",
                reason="archived",
                element_id=element,
            )
        # Served from the restored copy, in the restore element, until it expires.
        element, path = restored["restore_element_id"], restored["storage_path"]
        announced = restored["restore_backend"]
        request.state.audit_details = {"restore_id": str(restored["restore_id"])}
    if announced is None:
        raise Unavailable(f"element {element} has not announced where it stores files yet")
    refuse_if_failed(row)
    size: int = row["file_size"]
    etag = entity_tag(row["checksum"])
    last_modified = http_date(row["created_at"])  # content is immutable once stored
    headers = {
        "ETag": etag,
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=0, must-revalidate",
        "Content-Disposition": content_disposition(
            row["original_filename"], inline=request.query_params.get("disposition") == "inline"
        ),
    }
    if if_match_fails(request.headers.get("if-match"), etag):
        raise PreconditionFailed(f"the content's ETag is {etag}")
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    span = None
    if if_range_holds(request.headers.get("if-range"), etag, last_modified):
        try:
            span = parse_range(request.headers.get("range"), size)
        except Unsatisfiable:
            raise RangeNotSatisfiable(
                f"the content is {size} bytes long", headers={"Content-Range": f"bytes */{size}"}
            ) from None
    status = 206 if span is not None else 200
    start, length = (span.start, span.length) if span else (0, size)
    headers["Content-Length"] = str(length)
    if span is not None:
        headers["Content-Range"] = span.content_range(size)
    media_type = row["content_type"] or "application/octet-stream"
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers, media_type=media_type)
    backend = runtime.backend_for(element, announced)
    try:
        chunks = await asyncio.to_thread(
            backend.read_range, path, ByteRange(start, start + length - 1)
        )
        first = await asyncio.to_thread(next, chunks, b"")
    except ObjectMissing:
        raise NotFound(
            f"the content of file {file_id} is missing from element {element}; "
            "an operator should run a fixity check"
        ) from None
    body = _counted(first, chunks)
    if span is None:
        body = verified(body, row=row, report=lambda f: _announce(runtime, f))
    return StreamingResponse(body, status_code=status, headers=headers, media_type=media_type)


async def _announce(runtime: FacadeRuntime, payload: Any) -> None:
    await runtime.publisher.publish(new_event(payload, source="artstore://facade"))


async def _counted(first: bytes, rest: Iterator[bytes]) -> Any:
    metrics.BYTES_SENT.inc(len(first))
    yield first
    async for chunk in iterate_in_threadpool(rest):
        metrics.BYTES_SENT.inc(len(chunk))
        yield chunk


@router.get(
    "/uploads/{file_id}",
    summary="An upload's status: queued, stored, rejected, failed, deleted",
    responses=problems(404),
)
async def upload_status(file_id: UUID, request: Request, caller: UploadCaller) -> Response:
    runtime = runtime_of(request)
    async with runtime.pool.acquire() as conn:
        row = await queries.upload_row(conn, file_id)
    if row is None:
        raise NotFound(f"no upload {file_id} is known")
    body = {k: v for k, v in row.items() if k != "status_rank"}
    deletion = {k: body.pop(k) for k in ("deleted_at", "deleted_by", "deletion_reason")}
    if row["status"] == "stored" and deletion["deleted_at"] is not None:
        # Stored, then deleted: what a user asking about the upload needs to know now.
        body.update(status=UploadState.DELETED.value, **deletion)
    elif row["status"] == "stored":
        body["links"] = _file_links(str(file_id))
    return json_response(queries.dumps(body))


@router.get("/elements", summary="Storage elements: mode, capacity, liveness")
async def elements(request: Request, caller: ReadCaller) -> Response:
    runtime = runtime_of(request)
    async with runtime.pool.acquire() as conn:
        rows = await queries.element_rows(conn)
    admin = caller.claims.has_scopes("elements:admin")
    items = []
    for row in rows:
        item = dict(row)
        backend = item.get("backend") or {}
        if not admin:
            item["backend"] = {"kind": backend.get("kind")} if backend else None
        items.append(item)
    return json_response(queries.dumps({"items": items}))
