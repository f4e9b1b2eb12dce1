"""The operator's console: server-rendered pages under ``/console`` on the facade.

Elements, ingest, search and files, pipeline, accounts and the audit log, signed in with a
service account. Templates and the vendored htmx ship inside this package; nothing is fetched
from elsewhere at run time.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from facade.audit_door import note_audited_elsewhere, note_refusal
from facade.console import (
    routes_accounts,
    routes_audit,
    routes_elements,
    routes_files,
    routes_ingest,
    routes_pipeline,
    routes_session,
)
from facade.console.errors import ConsoleError, SignedOut
from facade.console.views import render

STATIC = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI) -> None:
    """Add the console's pages, its static files and its error pages to the facade app."""
    for module in (
        routes_session,
        routes_elements,
        routes_ingest,
        routes_files,
        routes_pipeline,
        routes_accounts,
        routes_audit,
    ):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        from facade.console.access import signed_in

        request.state.problem_detail = exc.detail  # the audit of a refused change says why
        if exc.audited_elsewhere:
            note_audited_elsewhere(request)

        try:
            operator = await signed_in(request)
        except (SignedOut, ConsoleError):
            operator = None
        return render(
            request, "error.html", operator, status=exc.status, title=exc.title, detail=exc.detail
        )

    @app.exception_handler(SignedOut)
    async def signed_out(request: Request, exc: SignedOut) -> Response:
        note_refusal(request, exc.notice or "not signed in to the console")
        target = f"/console/signin?next={quote(exc.next_url, safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


__all__ = ["install_console"]
