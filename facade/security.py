"""Bearer-token checks for every endpoint but health, through the one verifier in ``auth``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from auth import (
    InsufficientScope,
    SlidingWindowLimiter,
    TokenError,
    TokenVerifier,
    VerificationUnavailable,
    VerifiedToken,
)
from facade.outages import RETRY_AFTER_S
from facade.problems import Problem, Unavailable


class Unauthorized(Problem):
    status = 401
    title = "Unauthorized"


class Forbidden(Problem):
    status = 403
    title = "Forbidden"


class TooManyRequests(Problem):
    status = 429
    title = "Too many requests"


@dataclass(frozen=True)
class Caller:
    """Who is calling, and the raw token to forward with commands."""

    token: str
    claims: VerifiedToken


class RateLimit:
    """A per-client limit of ``limit`` requests per window, counted by auth's sliding window."""

    def __init__(self, limiter: SlidingWindowLimiter, limit: int) -> None:
        self.limiter = limiter
        self.limit = limit

    async def check(self, client_id: str) -> None:
        """Count one request of ``client_id``; 429 with ``Retry-After`` beyond the limit."""
        decision = await self.limiter.hit(client_id, self.limit)
        if not decision.allowed:
            raise TooManyRequests(
                f"more than {self.limit} requests in the window; retry later",
                headers={"Retry-After": str(max(1, decision.retry_after_s))},
            )


def bearer(request: Request) -> str:
    """The bearer token of the request, or 401."""
    header = request.headers.get("authorization")
    challenge = 'Bearer realm="artstore"'
    if not header:
        raise Unauthorized(
            "this endpoint needs a bearer token", headers={"WWW-Authenticate": challenge}
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "the Authorization header must be 'Bearer <token>'",
            headers={"WWW-Authenticate": challenge},
        )
    return token.strip()


def check_scopes(claims: VerifiedToken, scopes: tuple[str, ...], *, any_of: bool) -> None:
    """:class:`InsufficientScope` unless ``claims`` hold every one of ``scopes`` (or, with
    ``any_of``, at least one)."""
    if any_of:
        if not claims.scopes & set(scopes):
            raise InsufficientScope(
                f"token needs one of the scopes: {' '.join(scopes)}", missing=frozenset(scopes)
            )
        return
    missing = frozenset(scopes) - claims.scopes
    if missing:
        raise InsufficientScope(f"token lacks scope: {' '.join(sorted(missing))}", missing=missing)


def requires(*scopes: str, any_of: bool = False) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency that verifies the token and its scopes, then applies the rate limit.

    ``any_of`` accepts a token holding at least one of ``scopes`` instead of all of them.
    """

    async def dependency(request: Request) -> Caller:
        token = bearer(request)
        verifier: TokenVerifier = request.app.state.runtime.verifier
        try:
            # Every revocation made before this request counts (one shared round trip).
            await verifier.catch_up()
            claims = await verifier.verify(token)
            # Known from here on, so that a refusal for a missing scope names who was refused.
            request.state.client_id = claims.client_id
            check_scopes(claims, scopes, any_of=any_of)
        except VerificationUnavailable:
            # Not the caller's fault, and nothing of the key service's address for them.
            raise Unavailable(
                "tokens can't be checked now: the key service or the deny-list is not "
                "answering; retry later",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        except TokenError as exc:
            problem = {401: Unauthorized, 403: Forbidden}.get(exc.status_code, Problem)
            error = problem(exc.description, headers={"WWW-Authenticate": exc.www_authenticate()})
            error.status = exc.status_code
            raise error from None
        limit: RateLimit | None = request.app.state.runtime.rate_limit
        if limit is not None:
            await limit.check(claims.client_id)
        return Caller(token, claims)

    return dependency
