"""Who is at the console: the session behind the cookie, its token checked on every request,
CSRF on every form, and what the role may do, all decided here on the server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request

from auth import TokenError, VerificationUnavailable
from facade.console.errors import ConsoleError, SignedOut
from facade.console.runtime import console_of
from facade.console.sessions import COOKIE, Session, SessionStore
from facade.security import Caller

#: Longest form field the console accepts; anything longer is refused, not truncated.
MAX_FIELD = 2000
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Operator:
    """A signed-in operator: their session and the verified caller their token makes them."""

    session: Session
    caller: Caller

    @property
    def role(self) -> str:
        return self.session.role

    def may(self, scope: str) -> bool:
        """Whether the verified token grants ``scope`` (the server's decision, not the page's)."""
        return self.caller.claims.has_scopes(scope)

    def require(self, scope: str, action: str) -> None:
        """403 naming the role and the scope ``action`` needs."""
        if not self.may(scope):
            raise ConsoleError(
                403,
                "Not allowed",
                f"role {self.role} may not {action} (it needs the scope {scope}); "
                "sign in with an admin account to do it",
            )


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return quote(request.url.path + query, safe="/?=&")


async def signed_in(request: Request) -> Operator:
    """The operator behind the session cookie, or a redirect to sign-in."""
    console = console_of(request)
    sessions: SessionStore = console.sessions
    session = await sessions.find(request.cookies.get(COOKIE))
    if session is None:
        raise SignedOut(_here(request))
    try:
        claims = await console.runtime.verifier.verify(session.token)
    except VerificationUnavailable:
        # The keys or the deny-list away: the session is neither good nor bad yet; it stays.
        raise ConsoleError(
            503, "Sign-in can't be checked", "the key service is not answering; retry shortly"
        ) from None
    except TokenError as exc:
        await sessions.close(session.session_id)
        raise SignedOut(_here(request), f"your session ended: {exc.description}") from None
    request.state.client_id = claims.client_id  # the actor of what the request changes
    return Operator(session, Caller(session.token, claims))


async def form_fields(request: Request) -> dict[str, str]:
    """The form's text fields; 400 for files, repeated or over-long fields."""
    try:
        form = await request.form(max_files=0, max_fields=50)
    except Exception:
        raise ConsoleError(400, "Bad form", "the form could not be read") from None
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise ConsoleError(400, "Bad form", f"{name}: files are not accepted here")
        if name in fields:
            raise ConsoleError(400, "Bad form", f"{name}: give this field once")
        if len(value) > MAX_FIELD:
            raise ConsoleError(400, "Bad form", f"{name}: at most {MAX_FIELD} characters")
        fields[name] = value
    request.state.form_fields = fields  # the audit of the request finds its subject here
    return fields


async def checked_form(request: Request, operator: Operator) -> dict[str, str]:
    """The form's fields once its CSRF token matches the session's (403 otherwise)."""
    fields = await form_fields(request)
    if not csrf_matches(fields.get(CSRF_FIELD), operator.session.csrf_token):
        raise ConsoleError(
            403,
            "Form refused",
            "the form's CSRF token is missing or does not belong to this session; "
            "reload the page and submit it again",
        )
    return fields


def csrf_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())
