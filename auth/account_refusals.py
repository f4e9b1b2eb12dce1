"""Account changes the auth service refuses, audited as the changes themselves are.

A create, update, delete, secret rotation, suspension or activation refused for any reason — no
token or a bad one, a token without ``accounts:admin``, an invalid request, an unknown account, a
rule of ``auth.accounts`` — goes to ``artstore.audit`` through the outbox with outcome
``failure``, naming the caller when its token was good. Reads of the accounts API change nothing
and are not audited.

A caller without a good token is a failed authentication: it counts against its source
address's budget (``failed_auth_limit_per_source``, as at the token endpoint); beyond that
budget its refusals are counted in metrics and not audited, so a flood cannot fill the outbox.
"""

from __future__ import annotations

import logging
import re

from fastapi import Request

from auth.routes import source_of
from auth.runtime import AuthRuntime

log = logging.getLogger(__name__)

_ACCOUNT = r"^/api/v1/accounts/(?P<account>[^/]+)"
CHANGES = (
    ("POST", re.compile(r"^/api/v1/accounts/?$"), "account.create_refused"),
    ("PATCH", re.compile(_ACCOUNT + r"$"), "account.update_refused"),
    ("DELETE", re.compile(_ACCOUNT + r"$"), "account.delete_refused"),
    ("POST", re.compile(_ACCOUNT + r"/rotate-secret$"), "account.secret_rotation_refused"),
    ("POST", re.compile(_ACCOUNT + r"/suspend$"), "account.suspend_refused"),
    ("POST", re.compile(_ACCOUNT + r"/activate$"), "account.activate_refused"),
)


def refused_change(method: str, path: str) -> tuple[str, str | None] | None:
    """The refusal action of the account change a request asks for, and the account id it
    names; None for anything that is not an account change."""
    for verb, pattern, action in CHANGES:
        if verb == method and (match := pattern.match(path)):
            return action, match.groupdict().get("account")
    return None


async def audit_refusal(request: Request, *, status: int, reason: str, error: str) -> None:
    """Record the refusal of the account change ``request`` asked for (nothing for reads).

    Never raises: the caller is answered with its refusal even if the audit cannot be written
    (the database is away; then no change can be made either), and that is logged.
    """
    found = refused_change(request.method, request.url.path)
    if found is None:
        return
    action, account = found
    runtime: AuthRuntime = request.app.state.runtime
    actor: str | None = getattr(request.state, "client_id", None)
    try:
        if actor is None:
            limit = runtime.auth_settings.failed_auth_limit_per_source
            decision = await runtime.tokens.limiter.hit(f"source:{source_of(request)}", limit)
            if not decision.allowed:
                runtime.metrics.unaudited_refusals.inc()
                return
        await runtime.accounts.refused(
            action,
            account=account[:200] if account is not None else None,
            actor=actor,
            reason=reason,
            details={"status": status, "error": error},
        )
    except Exception:
        log.exception("refused account change not audited", extra={"action": action})
