"""Webhook secrets at rest: sealed with AES-256-GCM under an operator's key.

The dispatcher must know each secret to sign with it (an HMAC key cannot be stored as a hash),
so the database holds it encrypted: ``nonce (12 bytes) || ciphertext+tag``, the webhook's id as
associated data (a sealed secret copied onto another webhook's row does not open), and the id
of the key that sealed it beside it. The keys come from ``ARTSTORE_NOTIFICATIONS_SECRET_KEYS``
(never from the database): a dump of the database alone reveals no secret. The first key seals
new secrets, every listed key opens; to rotate, put a new key first and keep the old one until
no webhook sealed with it remains.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.webhooks import SECRET_PREFIX


class SealingUnavailable(RuntimeError):
    """No key to seal or open webhook secrets with (the setting is unset or wrong)."""


@dataclass(frozen=True)
class Sealed:
    """A sealed secret and the id of the key that sealed it."""

    key_id: str
    blob: bytes


def new_secret() -> str:
    """A fresh webhook secret: ``whsec_`` and 32 random bytes, base64url."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_key_setting(key_id: str = "k1") -> str:
    """A fresh ``<id>:<base64>`` entry for ``ARTSTORE_NOTIFICATIONS_SECRET_KEYS``."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode('ascii')}"


class SecretBox:
    """Seals and opens webhook secrets with the configured keys."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        self._keys = {key_id: AESGCM(key) for key_id, key in keys}
        self._current = keys[0][0] if keys else None

    @classmethod
    def from_setting(cls, entries: Sequence[str]) -> SecretBox:
        """From ``<id>:<base64 of 32 bytes>`` entries; :class:`SealingUnavailable` if one is bad."""
        keys: list[tuple[str, bytes]] = []
        for entry in entries:
            key_id, sep, encoded = entry.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if not sep or not key_id or len(key) != 32:
                raise SealingUnavailable(
                    "ARTSTORE_NOTIFICATIONS_SECRET_KEYS entries must be <id>:<base64 of 32 "
                    f"bytes>; {key_id or '(no id)'!r} is not"
                )
            keys.append((key_id, key))
        return cls(keys)

    @property
    def ready(self) -> bool:
        """Is there a key to seal new secrets with?"""
        return self._current is not None

    def seal(self, webhook_id: uuid.UUID, secret: str) -> Sealed:
        """Encrypt ``secret`` for ``webhook_id`` under the current key."""
        if self._current is None:
            raise SealingUnavailable(
                "webhooks are not configured: set ARTSTORE_NOTIFICATIONS_SECRET_KEYS"
            )
        nonce = os.urandom(12)
        blob = self._keys[self._current].encrypt(nonce, secret.encode(), webhook_id.bytes)
        return Sealed(self._current, nonce + blob)

    def open(self, webhook_id: uuid.UUID, sealed: Sealed) -> str:
        """The secret sealed for ``webhook_id``; :class:`SealingUnavailable` if no key opens it."""
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise SealingUnavailable(
                f"the secret of webhook {webhook_id} is sealed with key {sealed.key_id!r}, "
                "which ARTSTORE_NOTIFICATIONS_SECRET_KEYS no longer lists"
            )
        try:
            return aead.decrypt(sealed.blob[:12], sealed.blob[12:], webhook_id.bytes).decode()
        except InvalidTag:
            raise SealingUnavailable(
                f"the secret of webhook {webhook_id} does not open with key {sealed.key_id!r}"
            ) from None
