"""Sign-in, sign-out and the console's front door."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from auth import TokenError
from facade.console.access import CSRF_FIELD, csrf_matches, form_fields, signed_in
from facade.console.errors import ConsoleError
from facade.console.runtime import console_of
from facade.console.sessions import COOKIE, SIGNIN_COOKIE
from facade.console.signin import SignInRefused, exchange_credentials
from facade.console.views import render

router = APIRouter()
HOME = "/console/elements"


def _secure(request: Request) -> bool:
    mode = console_of(request).settings.cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def _next_url(raw: str | None) -> str:
    """Only a path inside the console: never another origin (no open redirect)."""
    if raw and raw.startswith("/console/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return HOME


def _signin_page(request: Request, *, error: str | None, status: int, next_url: str) -> Response:
    if error is not None:
        request.state.problem_detail = error  # the audit of the refused sign-in says why
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "signin.html",
        None,
        status=status,
        error=error,
        signin_token=token,
        next_url=_next_url(next_url),
        notice=request.query_params.get("ended") == "1",
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        token,
        max_age=900,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/console", include_in_schema=False)
async def front_door() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/console/signin", include_in_schema=False)
async def signin_form(request: Request) -> Response:
    return _signin_page(
        request, error=None, status=200, next_url=request.query_params.get("next", HOME)
    )


@router.post("/console/signin", include_in_schema=False)
async def signin(request: Request) -> Response:
    fields = await form_fields(request)
    if not csrf_matches(fields.get(CSRF_FIELD), request.cookies.get(SIGNIN_COOKIE) or "\0"):
        raise ConsoleError(
            403,
            "Form refused",
            "the sign-in form's CSRF token is missing or stale; reload the page and sign in again",
        )
    next_url = _next_url(fields.get("next"))
    client_id = fields.get("client_id", "").strip()
    secret = fields.get("client_secret", "")
    if not client_id or not secret:
        return _signin_page(
            request, error="give the client id and the secret", status=400, next_url=next_url
        )
    console = console_of(request)
    try:
        issued = await exchange_credentials(
            console.auth_url, client_id, secret, timeout_s=console.settings.auth_timeout_s
        )
        claims = await console.runtime.verifier.verify(issued.access_token)
    except SignInRefused as exc:
        return _signin_page(request, error=str(exc), status=401, next_url=next_url)
    except TokenError as exc:
        return _signin_page(
            request,
            error=f"the issued token was refused: {exc.description}",
            status=401,
            next_url=next_url,
        )
    request.state.client_id = claims.client_id
    expires_at = min(claims.expires_at, datetime.now(UTC) + timedelta(seconds=issued.expires_in))
    session = await console.sessions.open(
        token=issued.access_token,
        client_id=claims.client_id,
        role=claims.role,
        scopes=claims.scopes,
        expires_at=expires_at,
    )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE,
        session.session_id,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/console")
    return response


@router.post("/console/signout", include_in_schema=False)
async def signout(request: Request) -> Response:
    from facade.console.access import checked_form

    operator = await signed_in(request)
    await checked_form(request, operator)
    await console_of(request).sessions.close(operator.session.session_id)
    response = RedirectResponse("/console/signin?ended=1", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response
