"""Typed errors of token verification (RFC 6750 §3.1 vocabulary)."""

from __future__ import annotations


class TokenError(Exception):
    """A bearer token can't be accepted.

    ``error`` is the RFC 6750 error code a resource server returns, ``description`` a sentence a
    client developer can act on, and ``reason`` a stable machine-readable cause (``expired``,
    ``revoked``, ``signature``...) for logs, metrics and rejection facts.
    """

    error = "invalid_token"
    status_code = 401
    #: True when retrying later may succeed (the JWKS or the deny-list could not be reached).
    transient = False

    def __init__(self, description: str, *, reason: str) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason

    def www_authenticate(self, realm: str = "artstore") -> str:
        """The ``WWW-Authenticate`` challenge for this error (RFC 6750 §3)."""
        safe = self.description.replace("\\", "\\\\").replace('"', '\\"')
        return f'Bearer realm="{realm}", error="{self.error}", error_description="{safe}"'


class InvalidToken(TokenError):
    """Malformed, badly signed, expired, not yet valid, for someone else, or revoked."""


class InsufficientScope(TokenError):
    """The token is valid but lacks a scope the operation needs."""

    error = "insufficient_scope"
    status_code = 403

    def __init__(self, description: str, *, missing: frozenset[str]) -> None:
        super().__init__(description, reason="scope")
        self.missing = missing

    def www_authenticate(self, realm: str = "artstore") -> str:
        scope = " ".join(sorted(self.missing))
        return f'{super().www_authenticate(realm)}, scope="{scope}"'


class VerificationUnavailable(TokenError):
    """The keys or the deny-list could not be reached: the token is neither good nor bad yet."""

    error = "temporarily_unavailable"
    status_code = 503
    transient = True
