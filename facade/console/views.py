"""Rendering: a console page with the headers every page carries (the Jinja environment and its
filters are in :mod:`facade.console.templating`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from facade.console.runtime import console_of

if TYPE_CHECKING:
    from facade.console.access import Operator

#: No inline scripts or styles, nothing from another origin, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    template: str,
    operator: Operator | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A console page with the operator's identity and CSRF token in its context."""
    console = console_of(request)
    context.update(
        request=request,
        operator=operator,
        csrf_token=operator.session.csrf_token if operator else "",
        section=context.get("section", ""),
    )
    response = console.templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response
