"""What a storage worker depends on, each with a cheap probe (:mod:`storage_workers.outages`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from storage_workers.backends import StorageBackend
from storage_workers.claims import UploadClaims
from storage_workers.config import WorkerConfig
from storage_workers.outages import Probe
from storage_workers.staging import Staging
from storage_workers.writer_claim import WriterClaim

_PROBES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")
"""Blocking probes run here, not in the default executor: one that hangs (at most one per
dependency is in flight) can't starve the worker's own file I/O and lease renewals."""


ELEMENT_STORAGE = "element storage"
WRITER_LEASE = "writer lease"
OWN_DEPENDENCIES = frozenset({ELEMENT_STORAGE, WRITER_LEASE})
"""What only this element depends on. While one of these is away, the element takes no uploads
(another element of its class can); the others (staging, the claims' database, the deny-list,
the signing keys) every element of the class shares, so standing aside for them helps no one."""


async def _in_probe_thread(call: Callable[[], None]) -> None:
    await asyncio.get_running_loop().run_in_executor(_PROBES, call)


def worker_probes(
    *,
    config: WorkerConfig,
    backend: StorageBackend,
    staging: Staging,
    claims: UploadClaims | None,
    deny_list: Probe,
    writer_claim: WriterClaim | None = None,
) -> dict[str, Probe]:
    """The element's storage, the S3 staging area, the upload claims' database, the deny-list
    and the signing keys (when fetched over HTTP), by the names readiness reports.

    ``deny_list`` is the verifier's own catch-up, not a ping of Redis: after Redis is back the
    deny-list cache needs a moment to be live again, and until it is, commands can't be judged."""

    async def storage() -> None:
        await _in_probe_thread(backend.probe)

    async def staging_area() -> None:
        await _in_probe_thread(staging.probe)

    probes: dict[str, Probe] = {
        ELEMENT_STORAGE: storage,
        "staging": staging_area,
        "deny-list (Redis)": deny_list,
    }
    if claims is not None:
        probes["upload claims (PostgreSQL)"] = claims.ping
    if writer_claim is not None and writer_claim.lapses:
        claim = writer_claim

        async def writer_lease() -> None:
            # Consuming resumes only once the lease is ours again: after an outage longer than
            # its lifetime, another worker may have taken the element over.
            await _in_probe_thread(claim.renew)

        probes[WRITER_LEASE] = writer_lease
    if (url := config.jwks_url) is not None:

        async def signing_keys() -> None:
            async with httpx.AsyncClient() as client:
                response = await client.get(url, timeout=5.0)
            response.raise_for_status()

        probes["signing keys"] = signing_keys
    return probes
