"""Console sessions: kept in Redis under a random id; the cookie holds only that id.

A session lives as long as the access token it holds (the auth service's TTL), so signing out,
suspending the account or revoking the token ends it without any state here to reconcile.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

COOKIE = "artstore_console"
#: Double-submit token of the sign-in form, before any session exists.
SIGNIN_COOKIE = "artstore_console_signin"


@dataclass(frozen=True)
class Session:
    """A signed-in operator: the token to act with, who they are, and the CSRF token."""

    session_id: str
    token: str
    client_id: str
    role: str
    scopes: tuple[str, ...]
    csrf_token: str
    expires_at: datetime

    def may(self, scope: str) -> bool:
        """Whether the session's token grants ``scope``."""
        return scope in self.scopes


class SessionStore:
    """Sessions in Redis, keyed by a hash of the cookie value (a dump of Redis reveals none)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, session_id: str) -> str:
        return self._prefix + hashlib.sha256(session_id.encode()).hexdigest()

    async def open(
        self, *, token: str, client_id: str, role: str, scopes: frozenset[str], expires_at: datetime
    ) -> Session:
        """A new session until ``expires_at``."""
        session = Session(
            session_id=secrets.token_urlsafe(32),
            token=token,
            client_id=client_id,
            role=role,
            scopes=tuple(sorted(scopes)),
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires_at,
        )
        ttl = max(1, int((expires_at - datetime.now(UTC)).total_seconds()))
        body = {**asdict(session), "expires_at": expires_at.isoformat()}
        del body["session_id"]
        await self._redis.set(self._key(session.session_id), json.dumps(body), ex=ttl)
        return session

    async def find(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None."""
        if not session_id or len(session_id) > 128:
            return None
        raw = await self._redis.get(self._key(session_id))
        if raw is None:
            return None
        body = json.loads(raw)
        return Session(
            session_id=session_id,
            token=body["token"],
            client_id=body["client_id"],
            role=body["role"],
            scopes=tuple(body["scopes"]),
            csrf_token=body["csrf_token"],
            expires_at=datetime.fromisoformat(body["expires_at"]),
        )

    async def close(self, session_id: str) -> None:
        """End a session (sign-out)."""
        await self._redis.delete(self._key(session_id))
