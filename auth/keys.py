"""Signing keys in PostgreSQL: rotation on a schedule, and what the JWKS publishes.

A key signs from its creation until it is retired by the next rotation; it then stays published
for ``token_ttl + leeway + max_command_age + margin`` so that every token it signed can still be
verified until it expires, and every command such a token carried until it is too old to apply.
Rotation runs under a PostgreSQL advisory lock, so among many replicas one rotates and
the others pick the new key up on their next refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.db import signing_keys
from auth.jwks import parse_jwks
from auth.settings import AuthSettings
from auth.signing import SigningKey

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the schedule needs to know about a stored key."""

    kid: str
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None


def rotation_due(keys: Sequence[KeyRecord], now: datetime, period: timedelta) -> bool:
    """True when no key is signing, or the signing key is older than the rotation period."""
    active = [k for k in keys if k.retired_at is None]
    return not active or max(k.created_at for k in active) + period <= now


def is_published(key: KeyRecord, now: datetime) -> bool:
    """A key is in the JWKS while it signs and until the last token it signed has expired."""
    return key.publish_until is None or key.publish_until > now


class NoSigningKey(RuntimeError):
    """No key is loaded yet: the service is not ready to issue tokens."""


class KeyManager:
    """Owns the key ring of one replica: the signing key, the published keys, rotation."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: AuthSettings,
        clock: Clock,
        *,
        on_rotated: Callable[[str], None] = lambda kid: None,
    ) -> None:
        self._engine = engine
        self._on_rotated = on_rotated
        self._settings = settings
        self._clock = clock
        secret = settings.key_encryption_secret
        self._passphrase = secret.get_secret_value().encode() if secret else None
        self._signing: SigningKey | None = None
        self._public: dict[str, RSAPublicKey] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self.rotations = 0

    @property
    def retire_publish_for(self) -> timedelta:
        """How long a retired key stays published: until the last token it signed has expired
        *and* the last command that token carried is past the maximum command age, since a
        worker verifies a command at its record time, possibly that much later."""
        s = self._settings
        return s.token_ttl + s.leeway + s.max_command_age + s.key_publish_margin

    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with."""
        if self._signing is None:
            raise NoSigningKey("no signing key loaded yet")
        return self._signing

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: every published key, newest first."""
        return self._jwks

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        """The auth service verifies its own tokens (introspection, admin API) from memory."""
        return self._public.get(kid)

    async def load(self) -> None:
        """Refresh the ring from PostgreSQL (another replica may have rotated)."""
        now = self._clock()
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(signing_keys)
                    .where(
                        or_(
                            signing_keys.c.publish_until.is_(None),
                            signing_keys.c.publish_until > now,
                        )
                    )
                    .order_by(signing_keys.c.created_at.desc())
                )
            ).all()
        signing = next((r for r in rows if r.retired_at is None), None)
        if signing is not None and (self._signing is None or self._signing.kid != signing.kid):
            self._signing = SigningKey.from_pem(signing.kid, signing.private_pem, self._passphrase)
        jwks = {"keys": [dict(r.public_jwk) for r in rows]}
        self._public = parse_jwks(jwks)
        self._jwks = jwks

    async def rotate_if_due(self, *, force: bool = False) -> str | None:
        """Create a new signing key when the schedule says so; return its ``kid`` if we did."""
        new_kid: str | None = None
        async with self._engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('artstore.auth.key-rotation'))")
            )
            now = self._clock()
            rows = (
                await conn.execute(
                    select(
                        signing_keys.c.kid,
                        signing_keys.c.created_at,
                        signing_keys.c.retired_at,
                        signing_keys.c.publish_until,
                    )
                )
            ).all()
            records = [KeyRecord(r.kid, r.created_at, r.retired_at, r.publish_until) for r in rows]
            if force or rotation_due(records, now, self._settings.key_rotation_period):
                key = await asyncio.to_thread(SigningKey.generate)
                await conn.execute(
                    update(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None))
                    .values(retired_at=now, publish_until=now + self.retire_publish_for)
                )
                await conn.execute(
                    insert(signing_keys).values(
                        kid=key.kid,
                        private_pem=key.private_pem(self._passphrase),
                        public_jwk=key.jwk(),
                        created_at=now,
                    )
                )
                new_kid = key.kid
            # Keys no token can need any more are deleted, private half included.
            await conn.execute(
                delete(signing_keys).where(signing_keys.c.publish_until <= now - timedelta(days=1))
            )
        if new_kid is not None:
            self.rotations += 1
            self._on_rotated(new_kid)
            log.info("signing key rotated", extra={"kid": new_kid})
        await self.load()
        return new_kid

    async def run(self, stop: asyncio.Event) -> None:
        """Check the schedule and refresh the ring every ``key_check_interval`` until stopped."""
        interval = self._settings.key_check_interval.total_seconds()
        while not stop.is_set():
            try:
                await self.rotate_if_due()
            except Exception:
                log.exception("key rotation check failed; keeping the current keys")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)
