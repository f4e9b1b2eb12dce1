"""Mint access tokens in tests of other services, with a signing key that exists only in memory.

signer = TestSigner()
token = signer.issue(scopes={"files:write"}, name="producer")
verifier = signer.verifier()            # or TokenVerifier(StaticJwksSource(signer.jwks()), ...)
claims = await verifier.verify(token, required_scopes={"files:write"})
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from auth.jwks import StaticJwksSource
from auth.signing import SigningKey
from auth.verifier import RevocationChecker, TokenVerifier

TEST_ISSUER = "https://auth.artstore.test"
TEST_AUDIENCE = "artstore"


@lru_cache(maxsize=4)
def _shared_key(slot: int) -> SigningKey:
    # Generating RSA keys costs ~50 ms; tests in one process share a few.
    return SigningKey.generate()


class TestSigner:
    """Issues RS256 ``at+jwt`` tokens the way the auth service does, and publishes their JWKS."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        issuer: str = TEST_ISSUER,
        audience: str = TEST_AUDIENCE,
        ttl: timedelta = timedelta(minutes=15),
        key: SigningKey | None = None,
        slot: int = 0,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.key = key or _shared_key(slot)

    def claims(
        self,
        *,
        scopes: Iterable[str] = (),
        client_id: str = "sa_test_client_00000000",
        name: str = "client",
        role: str = "user",
        issued_at: datetime | None = None,
        ttl: timedelta | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The claims :meth:`issue` signs (RFC 9068 §2.2 plus ours)."""
        iat = issued_at or datetime.now(UTC)
        exp = iat + (ttl if ttl is not None else self.ttl)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": client_id,
            "aud": self.audience,
            "exp": int(exp.timestamp()),
            "iat": int(iat.timestamp()),
            "nbf": int(iat.timestamp()),
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
            "scope": " ".join(sorted(scopes)),
            "role": role,
            "name": name,
        }
        claims.update(extra or {})
        return claims

    def issue(self, **kwargs: Any) -> str:
        """A signed token; keyword arguments as for :meth:`claims`."""
        return self.key.sign(self.claims(**kwargs))

    def jwks(self) -> dict[str, Any]:
        """The JWKS that publishes this signer's key."""
        return {"keys": [self.key.jwk()]}

    def verifier(
        self,
        *,
        revocations: RevocationChecker | None = None,
        leeway: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] | None = None,
    ) -> TokenVerifier:
        """A :class:`TokenVerifier` that trusts this signer only."""
        return TokenVerifier(
            StaticJwksSource(self.jwks()),
            issuer=self.issuer,
            audience=self.audience,
            leeway=leeway,
            revocations=revocations,
            clock=clock,
        )
