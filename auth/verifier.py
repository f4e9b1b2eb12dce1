"""The one access-token verifier every ArtStore service uses (RFC 9068 JWTs, RS256 only).

Parsing is done here rather than by a general JWT library so that nothing but RS256 with a
key from our JWKS can ever reach signature verification: the ``alg`` header is compared to a
constant before any key is looked up, which is what makes ``alg: none`` and the HS256-signed-
with-the-public-key confusion impossible rather than merely configured away.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256

from auth.errors import InsufficientScope, InvalidToken, VerificationUnavailable
from auth.jwks import JwksSource
from auth.settings import MAX_LEEWAY

ALGORITHM = "RS256"
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_LENGTH = 8192

_PKCS1 = padding.PKCS1v15()
_SHA256 = SHA256()


class RevocationChecker(Protocol):
    """The deny-list: when a token id was revoked, if it was."""

    async def revoked_at(self, jti: str) -> datetime | None: ...

    async def catch_up(self) -> None:
        """Return once every revocation made before the call is visible to :meth:`revoked_at`
        (a no-op for a list read at its source)."""
        ...


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """The claims of an access token that passed every check."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    role: str
    jti: str
    issuer: str
    audience: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    not_before: datetime | None
    name: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def has_scopes(self, *scopes: str) -> bool:
        """True when the token carries every one of ``scopes``."""
        return self.scopes.issuperset(scopes)


def _b64url_decode(segment: str) -> bytes:
    try:
        return base64.b64decode(segment + "=" * (-len(segment) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("token is not valid base64url", reason="malformed") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken(f"token {what} is not JSON", reason="malformed") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object", reason="malformed")
    return value


def _required_date(claims: Mapping[str, Any], name: str) -> datetime:
    value = _numeric_date(claims, name)
    if value is None:
        raise InvalidToken(f"token has no '{name}' claim", reason="claims")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"token claim '{name}' is not a NumericDate", reason="claims")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise InvalidToken(f"token claim '{name}' is out of range", reason="claims") from exc


def _string_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"token has no '{name}' claim", reason="claims")
    return value


class SignatureCache:
    """Token strings whose signature a :class:`TokenVerifier` already found good.

    Meant to live for one batch of commands (never longer than the keys it was checked
    against): only the expensive part, the RSA signature, is remembered; every claim is checked
    again on each :meth:`TokenVerifier.verify`.
    """

    def __init__(self) -> None:
        self._claims: dict[str, Mapping[str, Any]] = {}

    def claims_of(self, token: str) -> Mapping[str, Any] | None:
        """The signed payload of ``token`` if its signature was verified before."""
        return self._claims.get(token)

    def remember(self, token: str, claims: Mapping[str, Any]) -> None:
        """Record that ``token``'s signature is good."""
        self._claims[token] = claims

    def __len__(self) -> int:
        return len(self._claims)


class TokenVerifier:
    """Verifies access tokens issued by the ArtStore auth service.

    Checks, in order: shape, ``alg`` pinned to RS256, ``typ`` at+jwt, ``kid`` known to the JWKS,
    signature, ``iss``, ``aud``, ``exp``/``nbf``/``iat`` against ``at`` (default: now) with a
    leeway of at most 60 s, required claims, the deny-list (revoked at or before ``at``), then
    the required scopes.
    """

    def __init__(
        self,
        keys: JwksSource,
        *,
        issuer: str,
        audience: str,
        leeway: timedelta = timedelta(seconds=30),
        revocations: RevocationChecker | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if leeway < timedelta(0) or leeway > MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY}, got {leeway}")
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._revocations = revocations
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def revocations(self) -> RevocationChecker | None:
        """The deny-list this verifier consults, if any."""
        return self._revocations

    def with_revocations(self, revocations: RevocationChecker) -> TokenVerifier:
        """The same verifier, consulting ``revocations``."""
        return TokenVerifier(
            self._keys,
            issuer=self._issuer,
            audience=self._audience,
            leeway=self._leeway,
            revocations=revocations,
            clock=self._clock,
        )

    async def catch_up(self) -> None:
        """Make every revocation made before this call count (see
        :meth:`RevocationChecker.catch_up`): once per request, or per batch of commands."""
        if self._revocations is None:
            return
        try:
            await self._revocations.catch_up()
        except VerificationUnavailable:
            raise
        except Exception as exc:
            raise VerificationUnavailable(
                f"could not check the revocation list: {exc}", reason="deny_list"
            ) from exc

    async def verify(
        self,
        token: str,
        *,
        required_scopes: Collection[str] = (),
        at: datetime | None = None,
        signatures: SignatureCache | None = None,
    ) -> VerifiedToken:
        """Return the token's claims or raise a :class:`~auth.errors.TokenError`.

        ``at`` checks validity at another instant than now — for a command read from Kafka, the
        record's (broker-assigned) timestamp — so a token that was valid when the command was
        written is honoured, and one that was not is refused, whenever the command is processed.

        ``signatures`` lets a batch of commands carrying the same token pay for its header and
        RSA signature checks once; its claims (validity at ``at``, issuer, audience), the
        deny-list and the scopes are still checked on every call.
        """
        claims = signatures.claims_of(token) if signatures is not None else None
        if claims is None:
            claims = await self._signed_claims(token)
            if signatures is not None:
                signatures.remember(token, claims)
        instant = at or self._clock()
        verified = self._check_claims(claims, instant)
        if self._revocations is not None:
            try:
                revoked_at = await self._revocations.revoked_at(verified.jti)
            except VerificationUnavailable:
                raise
            except Exception as exc:
                raise VerificationUnavailable(
                    f"could not check the revocation list: {exc}", reason="deny_list"
                ) from exc
            # Judged at ``at``: a command recorded before the revocation stands.
            if revoked_at is not None and instant >= revoked_at:
                raise InvalidToken(
                    f"token was revoked at {revoked_at.isoformat()}", reason="revoked"
                )
        missing = frozenset(required_scopes) - verified.scopes
        if missing:
            raise InsufficientScope(
                f"token lacks scope: {' '.join(sorted(missing))}", missing=missing
            )
        return verified

    async def _signed_claims(self, token: str) -> dict[str, Any]:
        """The payload of a token whose shape, header and signature are good."""
        header_b64, payload_b64, signature = self._split(token)
        header = _json_object(_b64url_decode(header_b64), "header")
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(
                f"token algorithm {header.get('alg')!r} is not accepted; only RS256 is",
                reason="algorithm",
            )
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in TOKEN_TYPES:
            raise InvalidToken(f"token type {typ!r} is not at+jwt", reason="type")
        if "crit" in header:
            raise InvalidToken("token uses critical header extensions", reason="malformed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token header has no 'kid'", reason="unknown_kid")
        key = await self._keys.get_key(kid)
        if key is None:
            raise InvalidToken(f"no published signing key has kid {kid!r}", reason="unknown_kid")
        try:
            key.verify(
                _b64url_decode(signature),
                f"{header_b64}.{payload_b64}".encode("ascii"),
                _PKCS1,
                _SHA256,
            )
        except InvalidSignature as exc:
            raise InvalidToken("token signature is invalid", reason="signature") from exc
        return _json_object(_b64url_decode(payload_b64), "payload")

    @staticmethod
    def _split(token: str) -> tuple[str, str, str]:
        if not isinstance(token, str) or not token:
            raise InvalidToken("no token", reason="malformed")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token is too long", reason="malformed")
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise InvalidToken(
                "token is not a signed JWT (header.payload.signature)", reason="malformed"
            )
        return parts[0], parts[1], parts[2]

    def _check_claims(self, claims: Mapping[str, Any], at: datetime) -> VerifiedToken:
        if claims.get("iss") != self._issuer:
            issuer = claims.get("iss")
            raise InvalidToken(f"token issuer {issuer!r} is not trusted", reason="issuer")
        aud = claims.get("aud")
        audience = (aud,) if isinstance(aud, str) else aud
        if not isinstance(audience, list | tuple) or self._audience not in audience:
            raise InvalidToken(
                f"token is not meant for audience {self._audience!r}", reason="audience"
            )
        expires_at = _required_date(claims, "exp")
        issued_at = _required_date(claims, "iat")
        not_before = _numeric_date(claims, "nbf")
        if at >= expires_at + self._leeway:
            raise InvalidToken(f"token expired at {expires_at.isoformat()}", reason="expired")
        starts = max(issued_at, not_before) if not_before else issued_at
        if at < starts - self._leeway:
            raise InvalidToken(
                f"token is not valid before {starts.isoformat()}", reason="not_yet_valid"
            )
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("token claim 'scope' is not a string", reason="claims")
        role = claims.get("role", "")
        name = claims.get("name")
        return VerifiedToken(
            subject=_string_claim(claims, "sub"),
            client_id=_string_claim(claims, "client_id"),
            scopes=frozenset(scope.split()),
            role=role if isinstance(role, str) else "",
            jti=_string_claim(claims, "jti"),
            issuer=self._issuer,
            audience=tuple(str(a) for a in audience),
            issued_at=issued_at,
            expires_at=expires_at,
            not_before=not_before,
            name=name if isinstance(name, str) else None,
            claims=claims,
        )
