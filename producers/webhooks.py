"""Checking ArtStore's webhook deliveries on the receiving side.

::

    from producers import WebhookSignatureError, verify_webhook

    try:
        verify_webhook(raw_body, request.headers.get("X-ArtStore-Signature"), secret)
    except WebhookSignatureError as exc:
        return 400, exc.reason          # malformed, expired, future or mismatch
    # then deduplicate on the X-ArtStore-Delivery header before acting

The format is defined once, in :mod:`events.webhooks` (docs/sdk.md, "Receiving webhooks").
"""

from __future__ import annotations

from collections.abc import Iterable

from events.webhooks import (
    ATTEMPT_HEADER,
    DEFAULT_TOLERANCE_S,
    DELIVERY_HEADER,
    KIND_HEADER,
    SIGNATURE_HEADER,
    WebhookSignatureError,
    verify_signature,
)

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERY_HEADER",
    "KIND_HEADER",
    "SIGNATURE_HEADER",
    "WebhookSignatureError",
    "verify_webhook",
]


def verify_webhook(
    body: bytes,
    signature_header: str | None,
    secret: str | Iterable[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Accept a delivery, or raise :class:`WebhookSignatureError` (``reason`` says why).

    ``body``: the raw request body, exactly as received; ``signature_header``: the
    ``X-ArtStore-Signature`` header; ``secret``: the webhook's secret (or several while it is
    replaced). Refuses signatures older than ``tolerance_s`` (5 minutes) or dated that far
    ahead, and compares in constant time. Returns the delivery's signing time (unix seconds).
    """
    return verify_signature(body, signature_header, secret, tolerance_s=tolerance_s, now=now)
