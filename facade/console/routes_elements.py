"""Elements: mode, fill against floors, health; a mode change with its reason and confirmation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from events import ChangeMode, EventTooLarge, Mode, new_event
from events.modes import check_transition
from facade.console import reads
from facade.console.access import Operator, checked_form, signed_in
from facade.console.capacity import FloorOverrides, fill_of
from facade.console.errors import ConsoleError
from facade.console.runtime import console_of
from facade.console.views import render

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]
_REQUESTED = re.compile(r"^[A-Za-z0-9_.-]{1,64}:(edit|rw|ro|ar)$")
#: A worker silent for longer than this is shown as not heart-beating.
SILENT_AFTER_S = 30.0


def _health(element: dict[str, Any], now: datetime) -> str:
    last = element.get("last_heartbeat_at")
    if not last:
        return "never seen"
    age = (now - datetime.fromisoformat(last)).total_seconds()
    return "alive" if age <= SILENT_AFTER_S else "silent"


async def _cards(request: Request) -> list[dict[str, Any]]:
    async with console_of(request).runtime.pool.acquire() as conn:
        rows = await reads.elements(conn)
    now = datetime.now(UTC)
    overrides = FloorOverrides()
    return [
        {
            "element": row,
            "fill": fill_of(row, overrides),
            "health": _health(row, now),
            "fixity": row.get("fixity_last_full_pass"),
        }
        for row in rows
    ]


def _elements_page(
    request: Request, operator: Operator, cards: list[dict[str, Any]], **extra: Any
) -> Response:
    requested = request.query_params.get("requested", "")
    status = extra.pop("status", 200)
    return render(
        request,
        "elements.html",
        operator,
        status=status,
        section="elements",
        cards=cards,
        requested=requested.split(":") if _REQUESTED.match(requested) else None,
        refusal=extra.pop("refusal", None),
        totals={
            "files": sum(int(c["element"].get("file_count") or 0) for c in cards),
            "bytes": sum(int(c["element"].get("used_bytes") or 0) for c in cards),
        },
        **extra,
    )


@router.get("/console/elements", include_in_schema=False)
async def elements_page(request: Request, operator: SignedIn) -> Response:
    return _elements_page(request, operator, await _cards(request))


@router.get("/console/elements/panel", include_in_schema=False)
async def elements_panel(request: Request, operator: SignedIn) -> Response:
    """The element cards alone, for the page's periodic refresh."""
    return render(
        request, "elements_panel.html", operator, cards=await _cards(request), refusal=None
    )


@router.post("/console/elements/mode", include_in_schema=False)
async def change_mode(request: Request, operator: SignedIn) -> Response:
    fields = await checked_form(request, operator)
    operator.require("elements:admin", "change element modes")
    console = console_of(request)
    element_id = fields.get("element_id", "")
    async with console.runtime.pool.acquire() as conn:
        element = await reads.element(conn, element_id)
    if element is None or not element.get("mode"):
        raise ConsoleError(404, "No such element", f"no element {element_id[:64]!r} is known")
    try:
        target = Mode(fields.get("target_mode", ""))
    except ValueError:
        raise ConsoleError(400, "Bad form", "target_mode: one of edit, rw, ro, ar") from None
    reason = fields.get("reason", "").strip()
    confirm = fields.get("confirm") == "yes"
    refusal = None
    if not reason:
        refusal = "give a reason: it is kept in the element's history of transitions"
    elif len(reason) > 500:
        refusal = "the reason is at most 500 characters"
    else:
        refused = check_transition(Mode(element["mode"]), target, confirm=confirm)
        refusal = refused.reason if refused else None
    if refusal is not None:
        request.state.problem_detail = refusal
        return _elements_page(
            request,
            operator,
            await _cards(request),
            status=409,
            refusal={"element_id": element_id, "target": target.value, "reason": refusal},
        )
    command = ChangeMode(element_id=element_id, target_mode=target, reason=reason, confirm=confirm)
    try:
        await console.runtime.publisher.publish(
            new_event(command, source="artstore/console"), token=operator.caller.token
        )
    except (KafkaError, EventTooLarge) as exc:
        raise ConsoleError(
            503, "Not queued", f"the mode change could not be queued: {exc}"
        ) from None
    return RedirectResponse(
        f"/console/elements?requested={element_id}:{target.value}", status_code=303
    )
