"""``GET /api/v1/audit``: the audit trail the projector keeps (scope ``audit:read``).

Newest first, keyset-paginated: ``next_cursor`` continues after the last entry of a page, so a
page never repeats or skips an entry while new ones arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from base.openapi import problems
from facade import queries
from facade.problems import BadRequest, utc_parameter
from facade.routes_read import json_response, runtime_of
from facade.security import Caller, requires

router = APIRouter(prefix="/api/v1", responses=problems(400, 401, 403, 429, 503))
AuditCaller = Annotated[Caller, Depends(requires("audit:read"))]
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
MAX_LIMIT = 500
_PAGE = """
SELECT event_id, occurred_at, action, actor, subject, outcome, reason, details, source,
       correlation_id
FROM audit_log
WHERE ($1::text IS NULL OR action = $1)
  AND ($2::text IS NULL OR starts_with(action, $2))
  AND ($3::text IS NULL OR actor = $3)
  AND ($4::text IS NULL OR subject = $4)
  AND ($5::text IS NULL OR outcome = $5)
  AND ($6::timestamptz IS NULL OR occurred_at >= $6)
  AND ($7::timestamptz IS NULL OR occurred_at < $7)
  AND ($8::timestamptz IS NULL OR (occurred_at, event_id) < ($8, $9::text))
ORDER BY occurred_at DESC, event_id DESC
LIMIT $10
"""


@router.get(
    "/audit",
    summary="Audit entries, newest first: who did what to whom, and how it ended",
    description=(
        "Filters: action (exact, or a prefix ending in '.', e.g. 'token.'), actor, subject, "
        "outcome, since/until (ISO 8601, since inclusive, until exclusive). limit, and "
        "cursor from the previous page's next_cursor."
    ),
)
async def audit(
    request: Request,
    caller: AuditCaller,
    action: Text = None,
    actor: Text = None,
    subject: Text = None,
    outcome: Literal["success", "failure"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    runtime = runtime_of(request)
    for value, name in ((since, "since"), (until, "until")):
        if value is None:
            continue
        if value.tzinfo is None:
            raise BadRequest(name, "give a time zone, e.g. 2026-01-31T12:00:00Z")
        utc_parameter(name, value)
    after = _decode_cursor(cursor) if cursor else (None, None)
    prefix = action if action and action.endswith(".") else None
    exact = action if action and prefix is None else None
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch(
            _PAGE, exact, prefix, actor, subject, outcome, since, until, *after, limit + 1
        )
    items = [_entry(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last["occurred_at"], last["event_id"])
    return json_response(queries.dumps({"items": items, "next_cursor": next_cursor}))


def _entry(row: Any) -> dict[str, Any]:
    entry = dict(row)
    if isinstance(entry["details"], str):
        entry["details"] = json.loads(entry["details"])
    return entry


def _encode_cursor(at: datetime, event_id: str) -> str:
    raw = json.dumps([at.isoformat(), event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, event_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(event_id, str):
            raise ValueError("shape")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise BadRequest("cursor", "not a cursor this service issued") from None
    return moment, event_id
