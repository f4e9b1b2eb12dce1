"""Pipeline: lag per consumer group and the dead letters waiting, as the broker reports them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from facade.console.access import Operator, console_of, signed_in
from facade.console.views import render

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]


@router.get("/console/pipeline", include_in_schema=False)
async def pipeline_page(request: Request, operator: SignedIn) -> Response:
    state = await console_of(request).lag.read()
    return render(request, "pipeline.html", operator, section="pipeline", state=state)
