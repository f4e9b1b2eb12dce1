"""Token handlers: client authentication, issuance (RFC 6749 §4.4), introspection (RFC 7662)
and revocation (RFC 7009). Framework-free; the routes translate :class:`OAuthError` to HTTP.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from auth import account_store as store
from auth.accounts import Account, AccountStatus
from auth.audit import AuditTrail
from auth.credentials import SecretHasher
from auth.errors import TokenError
from auth.keys import KeyManager
from auth.metrics import AuthMetrics
from auth.outbox import enqueue
from auth.ratelimit import SlidingWindowLimiter
from auth.revocation import RedisDenyList
from auth.scopes import ScopeNotAllowed, format_scope, grant_scopes
from auth.settings import AuthSettings
from auth.verifier import TokenVerifier
from events import Role

BASIC_CHALLENGE = 'Basic realm="artstore", charset="UTF-8"'
MAX_CLIENT_ID = 200
"""Longer than any client id (``sa_<env>_<name>_<8 hex>`` is at most 77 characters)."""


def could_be_client_id(client_id: str) -> bool:
    """Whether some account could have ``client_id``: printable text no longer than any. Any
    other (a NUL, a lone surrogate, ...) is not looked up: the database cannot even hold it."""
    return len(client_id) <= MAX_CLIENT_ID and client_id.isprintable()


def shown_client_id(client_id: str) -> str:
    """``client_id`` as a failed authentication's audit record names it: printable, bounded."""
    if could_be_client_id(client_id):
        return client_id
    printable = "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "?" for c in client_id
    )
    return printable[:MAX_CLIENT_ID]


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status_code: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}


def invalid_client(description: str = "client authentication failed") -> OAuthError:
    return OAuthError(
        "invalid_client",
        description,
        status_code=401,
        headers={"WWW-Authenticate": BASIC_CHALLENGE},
    )


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What the client presented, and how (``client_secret_basic`` or ``client_secret_post``)."""

    client_id: str
    secret: str
    method: str = "client_secret_post"
    source: str | None = None
    """The address the request came from (failed authentications are limited per source)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The body of a successful token response (§5.1)."""

    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


@dataclass
class TokenService:
    """Issues, introspects and revokes access tokens."""

    engine: AsyncEngine
    hasher: SecretHasher
    keys: KeyManager
    limiter: SlidingWindowLimiter
    deny_list: RedisDenyList
    verifier: TokenVerifier
    audit: AuditTrail
    settings: AuthSettings
    metrics: AuthMetrics
    clock: Callable[[], datetime]
    on_commit: Callable[[], None] = field(default=lambda: None)

    async def authenticate(self, creds: ClientCredentials) -> Account:
        """The account behind ``creds``, or ``invalid_client`` / 429.

        Limits, so that guessing is slow and nobody can lock a client out:
        - failed authentications count against the *source address*; once it is over
          ``failed_auth_limit_per_source`` it is refused before any check;
        - only successful ones count against the *client id* (its ``rate_limit``), so wrong
          secrets sent by a stranger never use up the real client's budget.

        A wrong secret costs one bcrypt check per stored hash (two in a rotation's grace
        window); an unknown or deleted client id costs none, but takes as long as a check
        (:meth:`SecretHasher.wait_like_a_check`), so response time does not tell which.
        """
        source = f"source:{creds.source}" if creds.source else None
        if source is not None:
            refused = await self._limited(
                source,
                self.settings.failed_auth_limit_per_source,
                peek=True,
                what=f"failed authentications from {creds.source}",
            )
            if refused is not None:
                raise refused  # counted in metrics, not audited: a flood can't fill the outbox
        account: Account | None = None
        async with self.engine.connect() as conn:
            if could_be_client_id(creds.client_id):
                account = await store.by_client_id(conn, creds.client_id)
            grace: list[str] = []
            if account is not None and account.status is not AccountStatus.DELETED:
                grace = await store.grace_hashes(conn, account.id, self.clock())
        matched = False
        if account is not None and account.status is not AccountStatus.DELETED:
            for hashed in (account.secret_hash, *grace[:1]):
                if await self.hasher.verify(creds.secret, hashed):
                    matched = True
                    break
        else:
            await self.hasher.wait_like_a_check()
        if not matched:
            if source is not None:
                await self.limiter.hit(source, self.settings.failed_auth_limit_per_source)
            await self._failure(
                shown_client_id(creds.client_id), "invalid_client", "unknown client or bad secret"
            )
            raise invalid_client()
        assert account is not None
        refused = await self._limited(
            f"client:{creds.client_id}", account.rate_limit, peek=False, what="requests"
        )
        if refused is not None:
            raise refused
        return account

    async def _limited(self, key: str, limit: int, *, peek: bool, what: str) -> OAuthError | None:
        """The 429 (or 503, Redis away and policy deny) for ``key`` over ``limit``, or None."""
        check = self.limiter.peek if peek else self.limiter.hit
        decision = await check(key, limit)
        if decision.degraded:
            self.metrics.redis_unavailable.labels("rate_limit").inc()
        if decision.allowed:
            return None
        self.metrics.rate_limited.inc()
        if decision.degraded:
            return OAuthError(
                "temporarily_unavailable",
                "rate limiting is unavailable; try again shortly",
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return OAuthError(
            "slow_down",
            f"more than {limit} {what} in the rate-limit window",
            status_code=429,
            headers={"Retry-After": str(decision.retry_after_s)},
        )

    async def issue(self, creds: ClientCredentials, scope: str | None) -> IssuedToken:
        """Client credentials grant: authenticate, check status and scope, sign, audit."""
        started = time.perf_counter()
        account = await self.authenticate(creds)
        now = self.clock()
        status = account.effective_status(now)
        if status is AccountStatus.EXPIRED:
            await self._failure(creds.client_id, "invalid_client", "client secret expired")
            raise invalid_client("the client secret has expired; ask an administrator to rotate it")
        if status is not AccountStatus.ACTIVE:
            await self._failure(creds.client_id, "unauthorized_client", f"account {status}")
            raise OAuthError("unauthorized_client", f"the client account is {status.value}")
        try:
            scopes = grant_scopes(account.role, scope)
        except ScopeNotAllowed as exc:
            await self._failure(creds.client_id, "invalid_scope", str(exc))
            raise OAuthError("invalid_scope", str(exc)) from exc
        ttl = self.settings.token_ttl
        iat = int(now.timestamp())
        granted = format_scope(scopes)
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": account.client_id,
            "aud": self.settings.audience,
            "exp": iat + int(ttl.total_seconds()),
            "iat": iat,
            "nbf": iat,
            "jti": uuid.uuid4().hex,
            "client_id": account.client_id,
            "scope": granted,
            "role": account.role.value,
            "name": account.name,
        }
        token = self.keys.signing_key().sign(claims)
        fact = self.audit.record(
            "token.issued",
            subject=account.client_id,
            actor=account.client_id,
            details={"jti": claims["jti"], "scope": claims["scope"], "method": creds.method},
        )
        async with self.engine.begin() as conn:
            await store.touch(conn, account.id, now)
            await enqueue(conn, [fact], now)
        self.on_commit()
        self.metrics.tokens_issued.labels(account.role.value).inc()
        self.metrics.issue_seconds.observe(time.perf_counter() - started)
        return IssuedToken(token, int(ttl.total_seconds()), granted)

    async def introspect(self, caller: ClientCredentials, token: str) -> dict[str, Any]:
        """RFC 7662: ``{"active": false}`` for anything not currently usable."""
        await self._authenticated_active(caller)
        try:
            claims = await self.verifier.verify(token)
        except TokenError:
            return {"active": False}
        async with self.engine.connect() as conn:
            owner = await store.by_client_id(conn, claims.client_id)
        if owner is None or owner.effective_status(self.clock()) is not AccountStatus.ACTIVE:
            return {"active": False}
        return {
            "active": True,
            "scope": format_scope(claims.scopes),
            "client_id": claims.client_id,
            "username": claims.name,
            "token_type": "Bearer",
            "exp": int(claims.expires_at.timestamp()),
            "iat": int(claims.issued_at.timestamp()),
            "nbf": int((claims.not_before or claims.issued_at).timestamp()),
            "sub": claims.subject,
            "aud": list(claims.audience),
            "iss": claims.issuer,
            "jti": claims.jti,
            "role": claims.role,
        }

    async def revoke(self, caller: ClientCredentials, token: str) -> None:
        """RFC 7009: deny the token's ``jti`` until it expires; unknown tokens are a no-op."""
        account = await self._authenticated_active(caller)
        try:
            claims = await self.verifier.verify(token)
        except TokenError:
            return  # invalid, expired or already revoked: nothing to do (§2.2)
        if claims.client_id != account.client_id and account.role is not Role.ADMIN:
            reason = "the token was not issued to this client"
            refused = self.audit.record(
                "token.revoke_refused",
                subject=claims.client_id,
                actor=account.client_id,
                outcome="failure",
                reason=reason,
                details={"jti": claims.jti, "error": "unauthorized_client"},
            )
            async with self.engine.begin() as conn:
                await enqueue(conn, [refused], self.clock())
            self.on_commit()
            raise OAuthError("unauthorized_client", reason)
        now = self.clock()
        try:
            await self.deny_list.revoke(claims.jti, expires_at=claims.expires_at, now=now)
        except Exception as exc:
            self.metrics.redis_unavailable.labels("revoke").inc()
            raise OAuthError(
                "temporarily_unavailable",
                "the revocation list is unavailable; try again",
                status_code=503,
                headers={"Retry-After": "5"},
            ) from exc
        fact = self.audit.record(
            "token.revoked",
            subject=claims.client_id,
            actor=account.client_id,
            details={"jti": claims.jti, "expires_at": claims.expires_at.isoformat()},
        )
        async with self.engine.begin() as conn:
            await enqueue(conn, [fact], now)
        self.on_commit()

    async def _authenticated_active(self, caller: ClientCredentials) -> Account:
        account = await self.authenticate(caller)
        if account.effective_status(self.clock()) is not AccountStatus.ACTIVE:
            raise invalid_client("the client account is not active")
        return account

    async def _failure(self, client_id: str, error: str, reason: str) -> None:
        self.metrics.token_failures.labels(error).inc()
        fact = self.audit.record(
            "token.failed",
            subject=client_id or "unknown",
            actor=client_id or None,
            outcome="failure",
            reason=reason,
            details={"error": error},
        )
        now = self.clock()
        async with self.engine.begin() as conn:
            await enqueue(conn, [fact], now)
        self.on_commit()
