"""The deny-list of revoked token ids (RFC 7009): in Redis, and in a local cache every service
verifies against.

A revocation is recorded with its instant: a command is judged at its record time, so a command
recorded before its token was revoked stands, and one recorded after is refused however late it
is processed. That is why an entry outlives its token by the maximum command age: a backlog may
hold commands up to that old.

The auth service writes ``<prefix>revoked:<jti>`` (the revocation instant) and publishes the
revocation on ``<prefix>revocations``. A :class:`DenyListCache` subscribes, then loads every
entry, so a verification is a dictionary lookup. :meth:`DenyListCache.catch_up` publishes a
marker on the same channel and waits for it to come back: Redis delivers a channel's messages in
the order it executed the PUBLISHes, so every revocation completed before the call is then in
the cache. Services call it once per request or per batch of commands, which makes a revocation
take effect from the moment it returns, at the price of one round trip shared by everything
verified meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from auth.errors import VerificationUnavailable

log = logging.getLogger(__name__)

#: How long after its token expired a revocation is kept: commands up to the workers' maximum
#: command age (24 h by default) may still be waiting in a topic.
DEFAULT_RETENTION = timedelta(hours=24, minutes=1)
#: The longest a token lives (``ARTSTORE_AUTH_TOKEN_TTL`` is at most an hour).
MAX_TOKEN_LIFETIME = timedelta(hours=1)


def _instant(seconds: str) -> datetime:
    return datetime.fromtimestamp(float(seconds), UTC)


class RedisDenyList:
    """Revoked ``jti``s with the instant of their revocation, until their token's ``exp`` plus
    ``retention``."""

    def __init__(
        self, redis: Redis, *, prefix: str, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._retention = retention

    @property
    def retention(self) -> timedelta:
        """How long after its token's expiry a revocation is kept."""
        return self._retention

    @property
    def channel(self) -> str:
        """Where revocations (and cache markers) are published."""
        return f"{self._prefix}revocations"

    def key(self, jti: str) -> str:
        """The Redis key of a revoked ``jti``."""
        return f"{self._prefix}revoked:{jti}"

    async def revoked_at(self, jti: str) -> datetime | None:
        """When ``jti`` was revoked, or ``None``."""
        value = await self._redis.get(self.key(jti))
        return None if value is None else _parse_value(value)

    async def catch_up(self) -> None:
        """Nothing to do: every answer comes from Redis itself."""

    async def revoke(self, jti: str, *, expires_at: datetime, now: datetime) -> None:
        """Deny ``jti`` from ``now`` until ``expires_at`` plus the retention, and tell every
        cache."""
        ttl_s = max(1, math.ceil((expires_at - now + self._retention).total_seconds()))
        stamp = f"{now.timestamp():.6f}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(jti), stamp, ex=ttl_s, nx=True)
            pipe.publish(self.channel, f"revoke {jti} {stamp}")
            await pipe.execute()


def _parse_value(value: bytes | str) -> datetime:
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return _instant(text)
    except ValueError:
        # An entry without its instant (written before instants were kept): revoked for ever.
        return datetime.fromtimestamp(0, UTC)


class DenyListCache:
    """A local copy of the deny-list, kept current by the revocation channel.

    :meth:`revoked_at` answers from memory; :meth:`catch_up` makes sure every revocation made
    before it was called is known. While the subscription is lost, :meth:`catch_up` fails with
    :class:`VerificationUnavailable` (callers refuse or retry rather than trust a stale copy);
    when it is back, the whole list is loaded again.
    """

    def __init__(
        self,
        deny_list: RedisDenyList,
        redis: Redis,
        *,
        timeout: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._deny_list = deny_list
        self._redis = redis
        self._timeout = timeout
        self._clock = clock
        self._revoked: dict[str, datetime] = {}
        self._markers: dict[str, asyncio.Future[None]] = {}
        self._open: asyncio.Future[None] | None = None
        self._live = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._revoked)

    async def start(self) -> None:
        """Subscribe and load the list; returns once the cache is live."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(self._live.wait(), self._timeout)
        except TimeoutError:
            raise VerificationUnavailable(
                "could not load the revocation list from Redis", reason="deny_list"
            ) from None

    async def stop(self) -> None:
        """Unsubscribe."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def revoked_at(self, jti: str) -> datetime | None:
        """When ``jti`` was revoked, as far as this cache knows."""
        return self._revoked.get(jti)

    async def catch_up(self) -> None:
        """Return once every revocation completed before this call is in the cache.

        Concurrent callers share one marker as long as it has not been published yet.
        """
        if not self._live.is_set():
            raise VerificationUnavailable(
                "the revocation list is not available (Redis subscription lost)",
                reason="deny_list",
            )
        marker = self._open
        if marker is None:
            marker = self._open = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._publish_marker(marker))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        try:
            await asyncio.wait_for(asyncio.shield(marker), self._timeout)
        except TimeoutError:
            raise VerificationUnavailable(
                "the revocation list did not answer in time", reason="deny_list"
            ) from None

    async def _publish_marker(self, marker: asyncio.Future[None]) -> None:
        token = uuid.uuid4().hex
        self._markers[token] = marker
        # From here on, callers need a marker published after they arrived: a new one.
        self._open = None
        try:
            await self._redis.publish(self._deny_list.channel, f"marker {token}")
        except Exception as exc:
            self._markers.pop(token, None)
            if not marker.done():
                marker.set_exception(
                    VerificationUnavailable(
                        f"could not reach the revocation list: {exc}", reason="deny_list"
                    )
                )
            marker.exception()  # retrieved: waiters that timed out don't leave it unobserved

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._deny_list.channel)
                await self._load()
                self._live.set()
                backoff = 0.1
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("revocation channel lost; reconnecting", extra={"error": str(exc)})
            finally:
                self._live.clear()
                self._fail_markers()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _load(self) -> None:
        pattern = self._deny_list.key("*")
        keys = [key async for key in self._redis.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, value in zip(chunk, await self._redis.mget(chunk), strict=True):
                if value is not None:
                    name = key.decode() if isinstance(key, bytes) else key
                    self._remember(name.rsplit(":", 1)[-1], _parse_value(value))
        self._forget_old()

    def _remember(self, jti: str, at: datetime) -> None:
        # The first revocation counts: revoking again doesn't move the instant (Redis keeps the
        # first one too), or commands recorded in between would stand.
        known = self._revoked.get(jti)
        self._revoked[jti] = at if known is None else min(known, at)
        if len(self._revoked) % 1024 == 0:
            self._forget_old()

    def _forget_old(self) -> None:
        """Drop revocations Redis has dropped too: no token lives longer than an hour."""
        horizon = self._clock() - MAX_TOKEN_LIFETIME - self._deny_list.retention
        for jti in [j for j, at in self._revoked.items() if at < horizon]:
            del self._revoked[jti]

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            data = message["data"]
            kind, _, rest = (data.decode() if isinstance(data, bytes) else data).partition(" ")
            if kind == "revoke":
                jti, _, stamp = rest.partition(" ")
                self._remember(jti, _parse_value(stamp))
            elif kind == "marker":
                marker = self._markers.pop(rest, None)
                if marker is not None and not marker.done():
                    marker.set_result(None)

    def _fail_markers(self) -> None:
        for marker in self._markers.values():
            if not marker.done():
                marker.set_exception(
                    VerificationUnavailable("the revocation channel was lost", reason="deny_list")
                )
                marker.exception()
        self._markers.clear()
