"""The deny-list of revoked token ids (RFC 7009), in Redis until each token's ``exp``."""

from __future__ import annotations

import math
from datetime import datetime

from redis.asyncio import Redis


class RedisDenyList:
    """``jti``s revoked before they expired; an entry disappears when its token would have."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, jti: str) -> str:
        return f"{self._prefix}revoked:{jti}"

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self._redis.exists(self._key(jti)))

    async def revoke(self, jti: str, *, expires_at: datetime, now: datetime) -> None:
        """Deny ``jti`` until ``expires_at`` (plus a minute for verifiers' leeway)."""
        ttl_s = max(1, math.ceil((expires_at - now).total_seconds()) + 60)
        await self._redis.set(self._key(jti), "1", ex=ttl_s)
