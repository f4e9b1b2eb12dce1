"""``/api/v1/dlq``: the dead-letter topic for operators, as ``artstore dlq`` shows it.

Reading needs ``audit:read`` (admin, auditor); sending letters back needs ``dlq:admin`` (admin).
What is refused is audited at the facade's door (``dlq.read_refused``, ``dlq.redrive_refused``);
each letter sent back is audited by the redrive itself (``dlq.redriven``), as from the CLI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from base.openapi import body, merged, problems
from facade import dead_letters, queries
from facade.dead_letters import DeadLetterQuery, RedriveRequest
from facade.routes_read import json_response, runtime_of
from facade.security import Caller, requires
from operations.dead_letter_queue import MAX_OFFSET, MAX_PARTITION

router = APIRouter(
    prefix="/api/v1", tags=["operations"], responses=problems(400, 401, 403, 429, 503)
)
ReadCaller = Annotated[Caller, Depends(requires("audit:read"))]
RedriveCaller = Annotated[Caller, Depends(requires("dlq:admin"))]
JSON = body(200, "application/json")


@router.get(
    "/dlq",
    summary="Dead letters, the latest first, and their counts (scope audit:read)",
    description=(
        "Every record a consumer gave up on, read from the dead-letter topic's start to its "
        "end. Filters: source_topic, group, error (reason, error class or part of the "
        "message), since/until (last failure, ISO 8601). `total` and `counts` (by source "
        "topic, consumer group and reason) cover every match; `items` is the page that "
        "`limit` and `offset` cut, `next_offset` where the next one starts."
    ),
    responses=JSON,
)
async def list_dead_letters(
    request: Request, caller: ReadCaller, query: Annotated[DeadLetterQuery, Query()]
) -> Response:
    page = await dead_letters.list_page(runtime_of(request), query)
    return json_response(queries.dumps(page))


@router.get(
    "/dlq/{partition}/{offset}",
    summary="One dead letter: its headers and its payload, decoded (scope audit:read)",
    description=(
        "The letter `partition/offset` of the dead-letter topic (its `id` in the list). "
        "Credentials are redacted: an `authorization` header keeps only its scheme."
    ),
    responses=merged(JSON, problems(404)),
)
async def show_dead_letter(
    request: Request,
    caller: ReadCaller,
    partition: Annotated[int, Path(ge=0, le=MAX_PARTITION)],
    offset: Annotated[int, Path(ge=0, le=MAX_OFFSET)],
) -> Response:
    letter = await dead_letters.one(runtime_of(request), partition, offset)
    return json_response(queries.dumps(letter))


@router.post(
    "/dlq/redrive",
    summary="Send dead letters back to their source topics (scope dlq:admin)",
    description=(
        "The letters that match the filters (and `ids`, when given). A dry run unless "
        "`execute` is true. A letter is sent at most once: the ledger keyed by its source "
        "topic, partition and offset answers `already_redriven` to every later redrive. Each "
        "letter sent leaves a `dlq.redriven` audit event with the caller as actor."
    ),
    responses=JSON,
)
async def redrive_dead_letters(
    request: Request, caller: RedriveCaller, redrive: RedriveRequest
) -> Response:
    report = await dead_letters.redrive(runtime_of(request), redrive, actor=caller.claims.client_id)
    return json_response(queries.dumps(report))
