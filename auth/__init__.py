"""ArtStore auth: the token service, and the verifier every other service uses.

Other packages import only what is exported here::

    from auth import HttpJwksSource, TokenVerifier, TokenError

    verifier = TokenVerifier(HttpJwksSource(jwks_url), issuer=..., audience="artstore")
    claims = await verifier.verify(token, required_scopes={"files:write"}, at=record_time)
"""

from auth.errors import InsufficientScope, InvalidToken, TokenError, VerificationUnavailable
from auth.jwks import HttpJwksSource, JwksSource, StaticJwksSource, parse_jwks
from auth.ratelimit import RateDecision, SlidingWindowLimiter
from auth.revocation import DenyListCache, RedisDenyList
from auth.scopes import ROLE_SCOPES, Scope, may_change_file, not_owner_detail
from auth.verifier import RevocationChecker, SignatureCache, TokenVerifier, VerifiedToken
from events import Role

__all__ = [
    "ROLE_SCOPES",
    "DenyListCache",
    "HttpJwksSource",
    "InsufficientScope",
    "InvalidToken",
    "JwksSource",
    "RateDecision",
    "RedisDenyList",
    "RevocationChecker",
    "Role",
    "Scope",
    "SignatureCache",
    "SlidingWindowLimiter",
    "StaticJwksSource",
    "TokenError",
    "TokenVerifier",
    "VerificationUnavailable",
    "VerifiedToken",
    "may_change_file",
    "not_owner_detail",
    "parse_jwks",
]
