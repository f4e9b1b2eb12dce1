"""What a storage worker depends on, each with a cheap probe (:mod:`storage_workers.outages`)."""

from __future__ import annotations

import asyncio

import httpx
from redis.asyncio import Redis

from storage_workers.backends import StorageBackend
from storage_workers.claims import UploadClaims
from storage_workers.config import WorkerConfig
from storage_workers.outages import Probe
from storage_workers.staging import Staging


def worker_probes(
    *,
    config: WorkerConfig,
    backend: StorageBackend,
    staging: Staging,
    claims: UploadClaims | None,
    redis: Redis,
) -> dict[str, Probe]:
    """The element's storage, the S3 staging area, the upload claims' database, the deny-list
    and the signing keys (when fetched over HTTP), by the names readiness reports."""

    async def storage() -> None:
        await asyncio.to_thread(backend.probe)

    async def staging_area() -> None:
        await asyncio.to_thread(staging.probe)

    async def deny_list() -> None:
        await redis.ping()

    probes: dict[str, Probe] = {
        "element storage": storage,
        "staging": staging_area,
        "deny-list (Redis)": deny_list,
    }
    if claims is not None:
        probes["upload claims (PostgreSQL)"] = claims.ping
    if (url := config.jwks_url) is not None:

        async def signing_keys() -> None:
            async with httpx.AsyncClient() as client:
                response = await client.get(url, timeout=5.0)
            response.raise_for_status()

        probes["signing keys"] = signing_keys
    return probes
