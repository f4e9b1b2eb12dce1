"""Revocation benchmark: token verification/s with the deny-list checked vs without, one core.

Baseline (same run, same tokens): ``TokenVerifier.verify`` with no deny-list — signature,
claims, scope. Measured: the same verifier consulting a :class:`auth.DenyListCache` fed by the
stack's Redis and holding ``BENCH_REVOKED`` revoked token ids (none of them the verified
tokens'), as the facade and every worker run it:

- *lookup*: the local cache consulted on every verification;
- *per batch*: plus one :meth:`DenyListCache.catch_up` (a marker round trip through Redis) per
  ``BENCH_BATCH`` verifications, as a worker does once per batch of commands;
- *per request*: plus one ``catch_up`` per verification, as the facade does once per request
  with no concurrent request to share it with (its worst case).

Rates are per CPU-second of the process, i.e. per core; baseline and measurements alternate in
rounds and each figure is the median of its rounds, so a machine busy with other work skews
both alike. The lone request's
wall-clock latency (catch-up round trip included) is reported beside them.
Run: ``python -m bench.bench_revocation`` (uses the running stack).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from statistics import median

from redis.asyncio import Redis

from artstore.stack import ensure_stack
from auth import DenyListCache, RedisDenyList, TokenVerifier
from auth.testing import TestSigner
from bench.results import BenchResult, report

VERIFIES = int(os.environ.get("BENCH_REVOCATION_VERIFIES", "20000"))
REVOKED = int(os.environ.get("BENCH_REVOKED", "10000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET = 20_000


async def rate(
    verifier: TokenVerifier, tokens: list[str], n: int, *, catch_up_every: int = 0
) -> float:
    """Verifications per CPU-second of this process (so: per core, however busy the machine
    is) over ``n`` verifications of ``tokens`` in turn. Time spent waiting for Redis is not CPU
    time: the per-request catch-up's cost to a single caller shows as latency, not here."""
    started = time.process_time()
    for i in range(n):
        if catch_up_every and i % catch_up_every == 0:
            await verifier.catch_up()
        await verifier.verify(tokens[i % len(tokens)], required_scopes=("files:write",))
    return n / (time.process_time() - started)


async def latency_ms(verifier: TokenVerifier, token: str, n: int) -> float:
    """Mean wall-clock milliseconds of one catch-up plus one verification (a lone request)."""
    started = time.perf_counter()
    for _ in range(n):
        await verifier.catch_up()
        await verifier.verify(token, required_scopes=("files:write",))
    return (time.perf_counter() - started) / n * 1000


async def revoke_many(deny_list: RedisDenyList, redis: Redis, count: int) -> None:
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=15)
    ttl = int((expires - now + deny_list.retention).total_seconds())
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(count):
            pipe.set(deny_list.key(uuid.uuid4().hex), f"{now.timestamp():.6f}", ex=ttl)
        await pipe.execute()


async def main() -> None:
    env = ensure_stack()
    redis = Redis.from_url(env.redis_url)
    prefix = f"bench{secrets.token_hex(4)}:auth:"
    deny_list = RedisDenyList(redis, prefix=prefix)
    try:
        await revoke_many(deny_list, redis, REVOKED)
        cache = DenyListCache(deny_list, redis)
        await cache.start()
        signer = TestSigner()
        baseline = signer.verifier()
        checked = baseline.with_revocations(cache)
        tokens = [signer.issue(scopes={"files:write", "files:read"}) for _ in range(100)]
        await rate(baseline, tokens, 1000)
        await rate(checked, tokens, 1000)

        plain: list[float] = []
        lookup: list[float] = []
        batch: list[float] = []
        request: list[float] = []
        alone: list[float] = []
        for _ in range(ROUNDS):
            plain.append(await rate(baseline, tokens, VERIFIES))
            lookup.append(await rate(checked, tokens, VERIFIES))
            batch.append(await rate(checked, tokens, VERIFIES, catch_up_every=BATCH))
            request.append(await rate(checked, tokens, VERIFIES // 10, catch_up_every=1))
            alone.append(await latency_ms(checked, tokens[0], 200))
        known = len(cache)
        await cache.stop()
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        await redis.aclose()
    base = median(plain)
    base_name = "verification without revocation checks"
    results = [
        BenchResult(
            "revocation",
            f"verification + deny-list lookup ({known:,} revoked)",
            median(lookup),
            "tokens/s",
            baseline=base_name,
            baseline_value=base,
            target=f">= {TARGET:,}/s",
            meets_target=median(lookup) >= TARGET,
        ),
        BenchResult(
            "revocation",
            f"... + one catch-up per {BATCH} (a worker's batch)",
            median(batch),
            "tokens/s",
            baseline=base_name,
            baseline_value=base,
            target=f">= {TARGET:,}/s",
            meets_target=median(batch) >= TARGET,
        ),
        BenchResult(
            "revocation",
            "... + one catch-up per verification (a lone request)",
            median(request),
            "tokens/s",
            baseline=base_name,
            baseline_value=base,
        ),
        BenchResult(
            "revocation",
            "a lone request's catch-up + verification, wall clock",
            median(alone),
            "ms",
        ),
    ]
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
