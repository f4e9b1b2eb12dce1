"""Hot searches cached in Redis; the projector's generation counter invalidates them all."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class SearchCache:
    """Pages keyed by (generation, search); a new generation makes every old page unreachable.

    Redis trouble never fails a search: it is logged and the database answers.
    """

    def __init__(self, redis: Redis, *, prefix: str, generation_key: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._generation_key = generation_key
        self._ttl_s = ttl_s

    async def get(self, key: str) -> tuple[str | None, str | None]:
        """(cached body or None, the slot to store a fresh body in or None if caching is off)."""
        if self._ttl_s <= 0:
            return None, None
        try:
            generation = await self._redis.get(self._generation_key)
            slot = f"{self._prefix}search:{_text(generation) or '0'}:{key}"
            body = _text(await self._redis.get(slot))
        except RedisError as exc:
            log.warning("search cache unavailable", extra={"error": str(exc)})
            return None, None
        return body, slot

    async def put(self, slot: str | None, body: str) -> None:
        """Store a page under the slot :meth:`get` handed out."""
        if slot is None:
            return
        try:
            await self._redis.set(slot, body, ex=self._ttl_s)
        except RedisError as exc:
            log.warning("search cache unavailable", extra={"error": str(exc)})


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
