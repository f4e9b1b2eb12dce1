"""The verifier refuses every forged, stale or misdirected token with the right error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from auth import (
    InsufficientScope,
    InvalidToken,
    SignatureCache,
    StaticJwksSource,
    TokenVerifier,
    VerificationUnavailable,
)
from auth.signing import SigningKey
from auth.testing import TestSigner

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def segment(obj: object) -> str:
    return b64(json.dumps(obj).encode())


@pytest.fixture
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture
def verifier(signer: TestSigner) -> TokenVerifier:
    return signer.verifier(clock=lambda: NOW)


def token(signer: TestSigner, **kwargs: object) -> str:
    kwargs.setdefault("issued_at", NOW - timedelta(minutes=1))
    return signer.issue(**kwargs)  # type: ignore[arg-type]


async def rejected(verifier: TokenVerifier, tok: str, **kwargs: object) -> InvalidToken:
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(tok, **kwargs)  # type: ignore[arg-type]
    assert info.value.error == "invalid_token"
    assert info.value.status_code == 401
    return info.value


async def test_a_good_token_yields_its_claims(signer: TestSigner, verifier: TokenVerifier) -> None:
    tok = token(signer, scopes={"files:write", "files:read"}, client_id="sa_dev_p_1", name="p")
    claims = await verifier.verify(tok, required_scopes={"files:write"})
    assert claims.client_id == "sa_dev_p_1"
    assert claims.subject == "sa_dev_p_1"
    assert claims.scopes == {"files:write", "files:read"}
    assert claims.name == "p"
    assert claims.has_scopes("files:read")
    assert claims.expires_at == NOW + timedelta(minutes=14)


async def test_alg_none_is_refused(signer: TestSigner, verifier: TokenVerifier) -> None:
    claims = signer.claims(issued_at=NOW)
    header = {"alg": "none", "typ": "at+jwt", "kid": signer.key.kid}
    forged = f"{segment(header)}.{segment(claims)}."
    assert (await rejected(verifier, forged)).reason == "malformed"
    forged = f"{segment(header)}.{segment(claims)}.{b64(b'x')}"
    assert (await rejected(verifier, forged)).reason == "algorithm"


async def test_hs256_signed_with_the_public_key_is_refused(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    public_pem = signer.key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": signer.key.kid}
    signing_input = f"{segment(header)}.{segment(signer.claims(issued_at=NOW))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    error = await rejected(verifier, f"{signing_input}.{b64(mac)}")
    assert error.reason == "algorithm"


async def test_other_asymmetric_algorithms_are_refused(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    tok = jwt.encode(
        signer.claims(issued_at=NOW),
        signer.key.private_key,
        algorithm="PS256",
        headers={"kid": signer.key.kid, "typ": "at+jwt"},
    )
    assert (await rejected(verifier, tok)).reason == "algorithm"


async def test_a_tampered_payload_fails_the_signature(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    header, _, signature = token(signer, scopes={"files:read"}).split(".")
    claims = signer.claims(issued_at=NOW, scopes={"files:read", "accounts:admin"}, role="admin")
    error = await rejected(verifier, f"{header}.{segment(claims)}.{signature}")
    assert error.reason == "signature"


async def test_a_token_signed_by_another_key_under_our_kid_fails(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    impostor = SigningKey(kid=signer.key.kid, private_key=SigningKey.generate().private_key)
    tok = impostor.sign(signer.claims(issued_at=NOW))
    assert (await rejected(verifier, tok)).reason == "signature"


async def test_a_wrong_kid_fails_even_if_that_key_is_published(signer: TestSigner) -> None:
    other = TestSigner(slot=1)
    verifier = TokenVerifier(
        StaticJwksSource({"keys": [signer.key.jwk(), other.key.jwk()]}),
        issuer=signer.issuer,
        audience=signer.audience,
        clock=lambda: NOW,
    )
    header = {"alg": "RS256", "typ": "at+jwt", "kid": other.key.kid}
    _, payload, signature = token(signer).split(".")
    assert (await rejected(verifier, f"{segment(header)}.{payload}.{signature}")).reason == (
        "signature"
    )


async def test_an_unknown_kid_is_refused(signer: TestSigner, verifier: TokenVerifier) -> None:
    stranger = TestSigner(slot=1, issuer=signer.issuer)
    assert (await rejected(verifier, token(stranger))).reason == "unknown_kid"


async def test_typ_must_be_at_jwt(signer: TestSigner, verifier: TokenVerifier) -> None:
    tok = jwt.encode(
        signer.claims(issued_at=NOW),
        signer.key.private_key,
        algorithm="RS256",
        headers={"kid": signer.key.kid, "typ": "JWT"},
    )
    assert (await rejected(verifier, tok)).reason == "type"


async def test_expired_and_not_yet_valid(signer: TestSigner, verifier: TokenVerifier) -> None:
    expired = token(signer, issued_at=NOW - timedelta(minutes=16))
    assert (await rejected(verifier, expired)).reason == "expired"
    future = token(signer, issued_at=NOW + timedelta(minutes=2))
    assert (await rejected(verifier, future)).reason == "not_yet_valid"


async def test_leeway_is_honoured_and_bounded(signer: TestSigner) -> None:
    verifier = signer.verifier(clock=lambda: NOW, leeway=timedelta(seconds=30))
    just_expired = token(signer, issued_at=NOW - timedelta(minutes=15, seconds=10))
    await verifier.verify(just_expired)
    with pytest.raises(ValueError, match="leeway"):
        signer.verifier(leeway=timedelta(minutes=5))


async def test_validity_at_a_given_instant(signer: TestSigner, verifier: TokenVerifier) -> None:
    tok = token(signer, issued_at=NOW - timedelta(hours=2))
    assert (await rejected(verifier, tok)).reason == "expired"
    claims = await verifier.verify(tok, at=NOW - timedelta(hours=2) + timedelta(minutes=5))
    assert claims.jti
    fresh = token(signer, issued_at=NOW)
    error = await rejected(verifier, fresh, at=NOW - timedelta(hours=1))
    assert error.reason == "not_yet_valid"


async def test_wrong_issuer_and_audience(signer: TestSigner, verifier: TokenVerifier) -> None:
    other_iss = TestSigner(issuer="https://evil.example", key=signer.key)
    assert (await rejected(verifier, token(other_iss))).reason == "issuer"
    other_aud = TestSigner(audience="someone-else", key=signer.key)
    assert (await rejected(verifier, token(other_aud))).reason == "audience"
    many = token(signer, extra={"aud": ["someone-else", signer.audience]})
    assert (await verifier.verify(many)).audience == ("someone-else", signer.audience)


async def test_missing_scope_is_insufficient_scope(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    tok = token(signer, scopes={"files:read"})
    with pytest.raises(InsufficientScope) as info:
        await verifier.verify(tok, required_scopes={"files:read", "files:write"})
    assert info.value.status_code == 403
    assert info.value.missing == {"files:write"}
    assert 'error="insufficient_scope"' in info.value.www_authenticate()
    assert 'scope="files:write"' in info.value.www_authenticate()


class DenyList:
    """An in-memory deny-list (the verifier's port; Redis-backed ones are tested for real)."""

    def __init__(self, revoked: dict[str, datetime], *, down: bool = False) -> None:
        self.revoked = revoked
        self.down = down

    async def revoked_at(self, jti: str) -> datetime | None:
        if self.down:
            raise ConnectionError("deny-list unreachable")
        return self.revoked.get(jti)

    async def catch_up(self) -> None:
        return None


async def test_revoked_jti_is_refused(signer: TestSigner) -> None:
    tok = token(signer)
    jti = jwt.decode(tok, options={"verify_signature": False})["jti"]
    verifier = signer.verifier(clock=lambda: NOW, revocations=DenyList({jti: NOW}))
    assert (await rejected(verifier, tok)).reason == "revoked"
    await verifier.verify(token(signer))


async def test_a_command_recorded_before_the_revocation_stands(signer: TestSigner) -> None:
    tok = token(signer)
    jti = jwt.decode(tok, options={"verify_signature": False})["jti"]
    revoked = NOW + timedelta(seconds=10)
    verifier = signer.verifier(clock=lambda: NOW, revocations=DenyList({jti: revoked}))
    await verifier.verify(tok, at=revoked - timedelta(microseconds=1))
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(tok, at=revoked)
    assert info.value.reason == "revoked"


async def test_an_unreachable_deny_list_is_transient(signer: TestSigner) -> None:
    verifier = signer.verifier(clock=lambda: NOW, revocations=DenyList({}, down=True))
    with pytest.raises(VerificationUnavailable) as info:
        await verifier.verify(token(signer))
    assert info.value.transient


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b", "a.b.c.d", "...", "!!.??.**", "x" * 9000, "eyJ.eyJ.sig"],
)
async def test_garbage_is_malformed(verifier: TokenVerifier, garbage: str) -> None:
    assert (await rejected(verifier, garbage)).reason == "malformed"


async def test_required_claims_must_be_present(signer: TestSigner, verifier: TokenVerifier) -> None:
    for claim in ("exp", "iat", "jti", "sub", "client_id"):
        claims = signer.claims(issued_at=NOW)
        del claims[claim]
        assert (await rejected(verifier, signer.key.sign(claims))).reason == "claims", claim
    bad_exp = signer.claims(issued_at=NOW, extra={"exp": "tomorrow"})
    assert (await rejected(verifier, signer.key.sign(bad_exp))).reason == "claims"


class CountingKeys:
    """A JWKS source that counts how often the verifier looks a key up (once per signature)."""

    def __init__(self, signer: TestSigner) -> None:
        self.inner = StaticJwksSource(signer.jwks())
        self.lookups = 0

    async def get_key(self, kid: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return await self.inner.get_key(kid)


async def test_a_signature_cache_checks_each_token_signature_once(signer: TestSigner) -> None:
    keys = CountingKeys(signer)
    verifier = TokenVerifier(keys, issuer=signer.issuer, audience=signer.audience)
    cache = SignatureCache()
    first, second = token(signer, scopes={"files:write"}), token(signer, scopes={"files:write"})
    for tok in (first, second, first, first, second):
        await verifier.verify(tok, required_scopes={"files:write"}, at=NOW, signatures=cache)
    assert keys.lookups == 2
    assert len(cache) == 2


async def test_a_cached_signature_still_has_its_claims_and_scopes_checked(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    cache = SignatureCache()
    tok = token(signer, scopes={"files:write"})
    await verifier.verify(tok, at=NOW, signatures=cache)
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(tok, at=NOW + timedelta(hours=1), signatures=cache)
    assert info.value.reason == "expired"
    with pytest.raises(InvalidToken) as info:
        await verifier.verify(tok, at=NOW - timedelta(hours=1), signatures=cache)
    assert info.value.reason == "not_yet_valid"
    with pytest.raises(InsufficientScope):
        await verifier.verify(tok, required_scopes={"files:delete"}, at=NOW, signatures=cache)


async def test_a_forged_token_is_never_remembered(
    signer: TestSigner, verifier: TokenVerifier
) -> None:
    cache = SignatureCache()
    forged = TestSigner(slot=3).issue(scopes={"files:write"}, issued_at=NOW)
    for _ in range(2):
        await rejected(verifier, forged, at=NOW, signatures=cache)
    assert len(cache) == 0
