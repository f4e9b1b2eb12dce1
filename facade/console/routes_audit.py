"""The audit log with filters, newest first (scope audit:read)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from facade.console import reads
from facade.console.access import Operator, signed_in
from facade.console.errors import ConsoleError
from facade.console.pages import decode_position
from facade.console.runtime import console_of
from facade.console.views import render

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
OUTCOMES = ("success", "failure")


def _text(name: str, raw: str | None) -> str | None:
    if not raw:
        return None
    if not _TEXT.match(raw):
        raise ConsoleError(400, "Bad filter", f"{name}: printable text, at most 200 characters")
    return raw


def _instant(name: str, raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConsoleError(400, "Bad filter", f"{name}: an ISO 8601 date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("/console/audit", include_in_schema=False)
async def audit_page(request: Request, operator: SignedIn) -> Response:
    operator.require("audit:read", "read the audit log")
    q = request.query_params
    filters = reads.AuditFilter(
        actor=_text("actor", q.get("actor")),
        action=_text("action", q.get("action")),
        subject=_text("subject", q.get("subject")),
        outcome=_text("outcome", q.get("outcome")),
        since=_instant("since", q.get("since")),
        until=_instant("until", q.get("until")),
    )
    after = decode_position(q.get("cursor"))
    console = console_of(request)
    async with console.runtime.pool.acquire() as conn:
        page = await reads.audit_page(conn, filters, after=after, limit=console.settings.page_size)
        actions = await reads.audit_actions(conn)
    params = {k: v for k, v in q.items() if v and k != "cursor"}
    return render(
        request,
        "audit.html",
        operator,
        section="audit",
        page=page,
        params=params,
        actions=actions,
        outcomes=OUTCOMES,
    )
