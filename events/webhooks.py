"""Signed notifications: the header names, the signature format and its check.

The dispatcher signs every webhook delivery; a receiver checks it with the SDK's
:func:`producers.verify_webhook` (this module's :func:`verify_signature`). One format, so the
two can never drift:

``X-ArtStore-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is the lowercase hex
HMAC-SHA256, keyed with the webhook's secret (its UTF-8 bytes, ``whsec_`` prefix included),
of the ASCII timestamp, a full stop, and the raw request body: ``f"{t}.".encode() + body``.
A header may carry several ``v1`` entries (one per secret during a rotation); any match counts.
Pure standard library: the SDK imports it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "X-ArtStore-Signature"
"""``t=<unix seconds>,v1=<hex>``: see the module's docstring."""
DELIVERY_HEADER = "X-ArtStore-Delivery"
"""The delivery's id: the same on every attempt of one delivery; a receiver deduplicates on it."""
KIND_HEADER = "X-ArtStore-Event"
"""The notification's kind, e.g. ``upload.stored``."""
ATTEMPT_HEADER = "X-ArtStore-Attempt"
"""1 for the first attempt, then 2, 3, ..."""

SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300
"""A signature older than this (or this far in the future) is refused."""
SECRET_PREFIX = "whsec_"


class WebhookSignatureError(ValueError):
    """A delivery whose signature does not prove it came from ArtStore, now.

    ``reason`` is a stable word: ``malformed`` (no usable header), ``expired`` (older than the
    tolerance), ``future`` (dated too far ahead), ``mismatch`` (signed with another secret, or
    the body or timestamp was changed).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-ArtStore-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={_mac(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    if len(header) > 4096:
        raise WebhookSignatureError("malformed", "the signature header is too long")
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if timestamp is not None:
                raise WebhookSignatureError("malformed", "the signature header has two t= entries")
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise WebhookSignatureError("malformed", "the timestamp t= is not unix seconds")
            timestamp = int(value)
        elif name == SCHEME:
            signatures.append(value.strip())
    if timestamp is None:
        raise WebhookSignatureError("malformed", "the signature header has no timestamp t=")
    if not signatures:
        raise WebhookSignatureError("malformed", f"the signature header has no {SCHEME}= entry")
    return timestamp, signatures


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str | Iterable[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Accept a delivery or raise :class:`WebhookSignatureError`; returns its timestamp.

    ``body`` is the raw request body as received (before any JSON parsing), ``header`` the
    ``X-ArtStore-Signature`` value, ``secret`` the webhook's secret (or several, while one is
    being replaced; ValueError if it is empty or not text). Refuses a timestamp more than
    ``tolerance_s`` seconds away from ``now`` (in the past or the future), so a captured
    delivery cannot be replayed later. Compares in constant time.
    """
    if not header:
        raise WebhookSignatureError("malformed", f"the {SIGNATURE_HEADER} header is missing")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("verify the raw body as bytes, not parsed JSON or text")
    timestamp, signatures = _parse(header)
    current = time.time() if now is None else now
    age = current - timestamp
    if age > tolerance_s:
        raise WebhookSignatureError(
            "expired", f"the signature is {int(age)} s old; at most {tolerance_s} s is accepted"
        )
    if -age > tolerance_s:
        raise WebhookSignatureError(
            "future",
            f"the signature is dated {int(-age)} s ahead; check the receiver's clock",
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        # An empty key is one anybody can sign with: a receiver whose secret setting is unset
        # would accept forged deliveries.
        raise ValueError("give the webhook's secret: a non-empty string (or several)")
    payload = bytes(body)
    matched = False
    for candidate in secrets:
        expected = _mac(candidate, timestamp, payload).encode("ascii")
        for given in signatures:
            # Every pair is compared (no early exit): the time taken says nothing of which.
            matched |= hmac.compare_digest(expected, given.encode("utf-8", "replace"))
    if not matched:
        raise WebhookSignatureError(
            "mismatch", "the signature does not match this body, timestamp and secret"
        )
    return timestamp
