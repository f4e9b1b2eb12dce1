"""Where the verifier finds public keys: a JWKS fetched over HTTP and cached, or a static set."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers

from auth.errors import VerificationUnavailable

log = logging.getLogger(__name__)

MIN_RSA_BITS = 2048


class JwksSource(Protocol):
    """Finds the public key for a ``kid``; ``None`` when no published key has that id."""

    async def get_key(self, kid: str) -> RSAPublicKey | None: ...


def _b64url_uint(value: str) -> int:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def parse_jwks(document: Mapping[str, Any]) -> dict[str, RSAPublicKey]:
    """The usable RS256 signing keys of a JWKS, parsed once, by ``kid``.

    Keys that are not RSA, not for signatures, for another algorithm, shorter than 2048 bits or
    without a ``kid`` are skipped: a key we would never accept is better not loaded at all.
    """
    keys: dict[str, RSAPublicKey] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS needs a 'keys' list")
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or jwk.get("kty") != "RSA":
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
            continue
        try:
            numbers = RSAPublicNumbers(_b64url_uint(jwk["e"]), _b64url_uint(jwk["n"]))
            key = numbers.public_key()
        except (KeyError, TypeError, ValueError, binascii.Error):
            log.warning("skipping malformed JWK", extra={"kid": kid})
            continue
        if key.key_size < MIN_RSA_BITS:
            log.warning("skipping short RSA key", extra={"kid": kid, "bits": key.key_size})
            continue
        keys[kid] = key
    return keys


class StaticJwksSource:
    """A fixed key set: for tests, and for services handed the keys some other way."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(jwks)

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        return self._keys.get(kid)


class HttpJwksSource:
    """The auth service's ``/.well-known/jwks.json``, fetched on demand and cached.

    Parsed key objects are cached for ``max_age``; a ``kid`` we don't know triggers a refetch (a
    rotation published a new key), but at most once per ``min_refetch_interval`` so that tokens
    with made-up ``kid``s can't turn the verifier into a JWKS flood. If a refresh fails, keys we
    already hold keep working; a ``kid`` we never saw raises :class:`VerificationUnavailable`.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        max_age: float = 300.0,
        min_refetch_interval: float = 30.0,
        timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._max_age = max_age
        self._min_refetch = min_refetch_interval
        self._timeout = timeout
        self._now = monotonic
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        key = self._keys.get(kid)
        fetched = self._fetched_at
        if key is not None and fetched is not None and self._now() - fetched < self._max_age:
            return key
        async with self._lock:
            key = self._keys.get(kid)
            stale = self._fetched_at is None or self._now() - self._fetched_at >= self._max_age
            if key is not None and not stale:
                return key
            attempted = self._attempted_at
            if not stale and attempted is not None and self._now() - attempted < self._min_refetch:
                return None
            try:
                await self._refresh()
            except (httpx.HTTPError, ValueError) as exc:
                if key is not None:
                    return key
                raise VerificationUnavailable(
                    f"could not fetch signing keys from {self._url}: {exc}", reason="jwks"
                ) from exc
            return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._attempted_at = self._now()
        self.fetch_count += 1
        if self._client is not None:
            response = await self._client.get(self._url, timeout=self._timeout)
        else:
            async with httpx.AsyncClient() as client:
                response = await client.get(self._url, timeout=self._timeout)
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError("JWKS is not a JSON object")
        self._keys = parse_jwks(document)
        self._fetched_at = self._now()
