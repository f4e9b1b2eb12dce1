"""A dependency the facade can't reach is a 503 with a reason, never a 500.

PostgreSQL (the index), Redis (rate limits, the deny-list), S3 or a local element (downloads)
and the key service can each be away for a while. A request that meets one of them answers
503 problem+json naming what is away, with ``Retry-After``; the client tries again later and
nothing is lost (the facade keeps no state of its own on that path). The classification is
:mod:`base.outages`', with the element storage's own error added.
"""

from __future__ import annotations

from base import outages
from base.outages import RETRY_AFTER_S, outage_body
from storage_workers.backends import BackendError

OUTAGES: outages.Outages = ((BackendError, "the element's storage"), *outages.OUTAGES)
OUTAGE_TYPES = outages.outage_types(OUTAGES)


def outage_of(exc: BaseException) -> str | None:
    """What is away, when ``exc`` (or what caused it) says a dependency did not answer."""
    return outages.outage_of(exc, OUTAGES)


__all__ = ["OUTAGES", "OUTAGE_TYPES", "RETRY_AFTER_S", "outage_body", "outage_of"]
