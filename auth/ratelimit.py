"""Per-client sliding-window rate limit in Redis, exact under concurrency.

The window is a sorted set of request timestamps. One Lua script trims entries older than the
window, counts, and admits the request only if the count is below the limit — all atomically
inside Redis, so N concurrent requests against a limit L admit exactly min(N, L). Timestamps
come from Redis' own clock (``TIME``), so replicas with skewed clocks share one window.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_SLIDING_WINDOW = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


_PEEK = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  return {1, limit - count, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one request may proceed, and when to retry if not."""

    allowed: bool
    remaining: int
    retry_after_s: int
    #: True when Redis could not be asked and the redis-down policy decided.
    degraded: bool = False


class SlidingWindowLimiter:
    """``limit`` requests per ``window_s`` seconds per key; reusable by any HTTP front end."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        window_s: float,
        when_unavailable: Literal["allow", "deny"] = "allow",
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._window_ms = int(window_s * 1000)
        self._when_unavailable = when_unavailable
        self._script = redis.register_script(_SLIDING_WINDOW)
        self._peek = redis.register_script(_PEEK)
        self.unavailable = 0

    async def hit(self, key: str, limit: int) -> RateDecision:
        """Count one request for ``key`` and decide."""
        return await self._run(self._script, key, [self._window_ms, limit, uuid.uuid4().hex])

    async def peek(self, key: str, limit: int) -> RateDecision:
        """Would one more request for ``key`` be allowed? Counts nothing."""
        return await self._run(self._peek, key, [self._window_ms, limit])

    async def _run(self, script: Any, key: str, args: list[Any]) -> RateDecision:
        try:
            allowed, remaining, retry_ms = await script(keys=[f"{self._prefix}rl:{key}"], args=args)
        except (RedisError, OSError) as exc:
            self.unavailable += 1
            log.warning(
                "rate limiter unavailable; applying redis-down policy",
                extra={"policy": self._when_unavailable, "error": str(exc)},
            )
            allow = self._when_unavailable == "allow"
            return RateDecision(allow, 0, 0 if allow else 1, degraded=True)
        return RateDecision(
            allowed=bool(allowed),
            remaining=int(remaining),
            retry_after_s=max(1, math.ceil(int(retry_ms) / 1000)) if not allowed else 0,
        )
