"""Search and files: the facade's search with its filters, a file's sidecar and history, and
its download."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Request, Response

from facade import queries, routes_read
from facade.console import reads
from facade.console.access import Operator, signed_in
from facade.console.errors import ConsoleError
from facade.console.runtime import console_of
from facade.console.views import render
from facade.problems import Problem
from facade.search import RETENTION_POLICIES, SORT_COLUMNS, parse_search

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]
SEARCH_FIELDS = (
    "q", "filename", "extension", "tag", "username", "element", "retention_policy",
    "size_min", "size_max", "created_from", "created_to", "sort", "cursor",
)  # fmt: skip


@contextlib.contextmanager
def shown_as_page() -> Iterator[None]:
    """A facade problem (bad filter, unknown or deleted file) as a console page."""
    try:
        yield
    except Problem as problem:
        raise ConsoleError(problem.status, problem.title, problem.detail) from None


@router.get("/console/search", include_in_schema=False)
async def search_page(request: Request, operator: SignedIn) -> Response:
    operator.require("files:read", "search files")
    console = console_of(request)
    given = [(k, v) for k, v in request.query_params.multi_items() if v != ""]
    unknown = sorted({k for k, _ in given} - set(SEARCH_FIELDS))
    if unknown:
        raise ConsoleError(400, "Bad search", f"{unknown[0][:80]}: unknown filter")
    page = None
    if given:
        with shown_as_page():
            spec = parse_search(
                given,
                default_limit=console.settings.page_size,
                max_limit=console.runtime.facade.max_page_size,
                max_query_length=console.runtime.facade.max_query_length,
            )
            try:
                async with console.runtime.pool.acquire() as conn:
                    page = await queries.search(
                        conn, spec, rank_candidates=console.runtime.facade.rank_candidates
                    )
            except asyncpg.QueryCanceledError:
                raise ConsoleError(
                    503, "Search too broad", "add filters or a more specific query"
                ) from None
    params = dict(given)
    params.pop("cursor", None)
    return render(
        request,
        "search.html",
        operator,
        section="search",
        params=params,
        page=page,
        sorts=SORT_COLUMNS,
        retention_policies=RETENTION_POLICIES,
    )


def _history(
    document: dict[str, Any], upload: asyncpg.Record | None, audit: list[asyncpg.Record]
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    if upload is not None and upload["requested_at"] is not None:
        events.append({"at": upload["requested_at"].isoformat(), "what": "upload queued"})
    events.append({"at": document["created_at"], "what": f"stored on {document['element_id']}"})
    if document.get("version", 1) > 1:
        events.append(
            {
                "at": document["updated_at"],
                "what": f"metadata updated (version {document['version']})",
            }
        )
    fixity = document.get("fixity") or document.get("fixity_failure")
    if fixity:
        events.append(
            {
                "at": fixity.get("checked_at") or fixity.get("detected_at") or "",
                "what": f"fixity {fixity.get('status', 'failed')}"
                + (f": {fixity['detail']}" if fixity.get("detail") else ""),
            }
        )
    if document.get("deleted_at"):
        events.append(
            {
                "at": document["deleted_at"],
                "what": f"deleted by {document.get('deleted_by')} "
                f"({document.get('deletion_reason')})",
            }
        )
    for entry in audit:
        events.append(
            {
                "at": entry["occurred_at"].isoformat(),
                "what": f"{entry['action']} by {entry['actor']}: {entry['outcome']}",
            }
        )
    return sorted(events, key=lambda e: str(e["at"]))


@router.get("/console/files/{file_id}", include_in_schema=False)
async def file_page(file_id: str, request: Request, operator: SignedIn) -> Response:
    operator.require("files:read", "see files")
    identifier = _file_id(file_id)
    async with console_of(request).runtime.pool.acquire() as conn:
        document = await reads.file_document(conn, identifier)
        if document is None:
            raise ConsoleError(404, "No such file", f"no file {identifier} is known to the index")
        row = await queries.file_row(conn, identifier)
        upload = await reads.upload_of(conn, identifier)
        audit = await reads.subject_audit(conn, str(identifier))
    assert row is not None
    return render(
        request,
        "file.html",
        operator,
        section="search",
        document=document,
        sidecar=json.dumps(
            queries.sidecar(row), indent=2, default=queries.json_default, ensure_ascii=False
        ),
        element_mode=row["element_mode"],
        history=_history(document, upload, audit),
    )


@router.get("/console/files/{file_id}/content", include_in_schema=False)
async def file_download(file_id: str, request: Request, operator: SignedIn) -> Response:
    operator.require("files:read", "download files")
    with shown_as_page():
        return await routes_read.file_content(_file_id(file_id), request, operator.caller)


def _file_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ConsoleError(400, "Bad file id", "a file id is a UUID") from None
