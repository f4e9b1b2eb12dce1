"""Ingest: recent uploads with their status and rejection reasons, and the last hour's rates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from events.uploads import UploadState
from facade.console import reads
from facade.console.access import Operator, signed_in
from facade.console.errors import ConsoleError
from facade.console.pages import decode_position
from facade.console.runtime import console_of
from facade.console.views import render

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]
STATUSES = (
    UploadState.QUEUED,
    UploadState.STORED,
    UploadState.REJECTED,
    UploadState.FAILED,
)


@router.get("/console/ingest", include_in_schema=False)
async def ingest_page(request: Request, operator: SignedIn) -> Response:
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ConsoleError(400, "Bad filter", f"status: one of {', '.join(STATUSES)}")
    after = decode_position(request.query_params.get("cursor"))
    console = console_of(request)
    async with console.runtime.pool.acquire() as conn:
        page = await reads.recent_uploads(
            conn, status=status, after=after, limit=console.settings.page_size
        )
        rates = await reads.ingest_rates(conn, now=datetime.now(UTC))
    return render(
        request,
        "ingest.html",
        operator,
        section="ingest",
        page=page,
        rates=rates,
        chosen=status,
        statuses=STATUSES,
    )
