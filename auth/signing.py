"""RSA signing keys and access-token encoding (the issuing side of RFC 9068)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auth.verifier import ALGORITHM

RSA_BITS = 2048
TOKEN_TYPE = "at+jwt"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, str]:
    """The JWK (RFC 7517) that publishes ``public_key`` for RS256 signature checks."""
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": kid,
            "n": _uint(numbers.n), "e": _uint(numbers.e)}  # fmt: skip


def thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256): a ``kid`` derived from the key itself."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its id; signs access tokens."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh RSA-2048 key whose ``kid`` is its thumbprint."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        return cls(kid=thumbprint(private_key.public_key()), private_key=private_key)

    def jwk(self) -> dict[str, str]:
        """The public half as a JWK."""
        return public_jwk(self.private_key.public_key(), self.kid)

    def private_pem(self, passphrase: bytes | None = None) -> str:
        """PKCS#8 PEM of the private key, encrypted when a passphrase is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ).decode("ascii")

    @classmethod
    def from_pem(cls, kid: str, pem: str, passphrase: bytes | None = None) -> SigningKey:
        """Load a key stored with :meth:`private_pem`."""
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"signing key {kid} is not an RSA key")
        return cls(kid=kid, private_key=key)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT with ``typ: at+jwt`` and this key's ``kid``."""
        return jwt.encode(
            dict(claims),
            self.private_key,
            algorithm=ALGORITHM,
            headers={"kid": self.kid, "typ": TOKEN_TYPE},
        )
