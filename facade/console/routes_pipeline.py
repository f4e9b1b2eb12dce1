"""Pipeline: lag per consumer group, and the dead letters — counted, listed, shown, redriven.

The dead letters go through :mod:`facade.dead_letters`, the code ``/api/v1/dlq`` runs: reading
them needs ``audit:read`` (every role sees the lag and how many records the topic holds), a
redrive ``dlq:admin``, a dry run first and then, from its result page, the same selection
executed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError

from facade import dead_letters
from facade.console.access import MAX_FIELD, Operator, checked_form, signed_in
from facade.console.errors import ConsoleError
from facade.console.runtime import console_of
from facade.console.views import render
from facade.dead_letters import DeadLetterFilters, DeadLetterQuery, RedriveRequest
from facade.problems import Problem
from operations.dead_letter_queue import parse_letter_id

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]
FILTERS = tuple(DeadLetterFilters.model_fields)
READ, REDRIVE = "audit:read", "dlq:admin"


def _invalid(exc: ValidationError) -> ConsoleError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "form"
    return ConsoleError(400, "Bad filter", f"{where}: {first.get('msg', 'invalid')}")


def _parsed(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _failed(exc: Problem) -> ConsoleError:
    return ConsoleError(exc.status, exc.title, exc.detail)


async def _letters(
    request: Request, operator: Operator, params: dict[str, str], offset: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The page of dead letters (None without ``audit:read``) or why there is none."""
    if not operator.may(READ):
        return None, None
    console = console_of(request)
    query = _parsed(
        DeadLetterQuery,
        {**params, "offset": offset or "0", "limit": console.settings.page_size},
    )
    try:
        return await dead_letters.list_page(console.runtime, query), None
    except Problem as exc:  # the lag still shows; the reason takes the list's place
        return None, exc.detail


@router.get("/console/pipeline", include_in_schema=False)
async def pipeline_page(request: Request, operator: SignedIn) -> Response:
    q = request.query_params
    params = {k: q[k] for k in FILTERS if q.get(k)}
    state, (letters, problem) = await asyncio.gather(
        console_of(request).lag.read(), _letters(request, operator, params, q.get("offset", ""))
    )
    return render(
        request,
        "pipeline.html",
        operator,
        section="pipeline",
        state=state,
        letters=letters,
        dlq_problem=problem,
        params=params,
        may_read=operator.may(READ),
        may_redrive=operator.may(REDRIVE),
    )


@router.get("/console/pipeline/dlq/{partition}/{offset}", include_in_schema=False)
async def letter_page(
    request: Request, operator: SignedIn, partition: str, offset: str
) -> Response:
    operator.require(READ, "read dead letters")
    place = parse_letter_id(f"{partition}/{offset}")
    if place is None:
        raise ConsoleError(404, "No such dead letter", "a dead letter is named partition/offset")
    try:
        letter = await dead_letters.one(console_of(request).runtime, *place)
    except Problem as exc:
        raise _failed(exc) from None
    return render(
        request,
        "dlq_letter.html",
        operator,
        section="pipeline",
        letter=letter,
        payload_text=json.dumps(letter["payload"], indent=2, ensure_ascii=False),
        may_redrive=operator.may(REDRIVE),
    )


@router.post("/console/pipeline/dlq/redrive", include_in_schema=False)
async def redrive(request: Request, operator: SignedIn) -> Response:
    """A dry run, or (``execute=yes``) the send; ``ids`` (space-separated) narrows the filters."""
    fields = await checked_form(request, operator)
    operator.require(REDRIVE, "redrive dead letters")
    given = {k: fields[k] for k in FILTERS if fields.get(k)}
    ids = fields.get("ids", "").split()
    wanted: RedriveRequest = _parsed(
        RedriveRequest, {**given, "ids": ids, "execute": fields.get("execute") == "yes"}
    )
    try:
        report = await dead_letters.redrive(
            console_of(request).runtime, wanted, actor=operator.caller.claims.client_id
        )
    except Problem as exc:
        raise _failed(exc) from None
    return render(
        request,
        "dlq_redrive.html",
        operator,
        section="pipeline",
        report=report,
        execute=_execute_fields(given, report) if not wanted.execute else None,
    )


def _execute_fields(given: dict[str, str], report: dict[str, Any]) -> dict[str, str]:
    """The fields that execute what the dry run showed: the letters it would send, by id, so
    that a letter dead-lettered in between is not sent unseen; only the filters when there are
    more ids than one form field holds."""
    ids = " ".join(r["id"] for r in report["results"] if r["outcome"] == "would_send")
    named = len(ids) <= MAX_FIELD and ids.count(" ") < dead_letters.MAX_IDS
    return {**given, **({"ids": ids} if named else {}), "execute": "yes"}
