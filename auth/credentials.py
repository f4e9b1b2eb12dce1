"""Client secrets: generation, policy, bcrypt hashing, constant-time checks. Pure but for CPU."""

from __future__ import annotations

import asyncio
import secrets
import string
import time

import bcrypt

#: bcrypt only reads the first 72 bytes; a longer secret would silently be truncated.
MAX_SECRET_BYTES = 72
MIN_SECRET_LENGTH = 32


class SecretPolicyError(ValueError):
    """A chosen secret is too weak, too long, or was used recently."""


def generate_secret() -> str:
    """A new client secret: 256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def check_secret_policy(secret: str) -> None:
    """Refuse a client-chosen secret that is short, long, non-printable or of one kind."""
    raw = secret.encode("utf-8")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretPolicyError(f"a secret needs at least {MIN_SECRET_LENGTH} characters")
    if len(raw) > MAX_SECRET_BYTES:
        raise SecretPolicyError(f"a secret may have at most {MAX_SECRET_BYTES} bytes")
    if any(c not in string.printable or c in string.whitespace for c in secret):
        raise SecretPolicyError("a secret may only contain printable ASCII without spaces")
    classes = sum(
        any(c in group for c in secret)
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits, "-_")
    ) + any(c in string.punctuation and c not in "-_" for c in secret)
    if classes < 3:
        raise SecretPolicyError(
            "a secret needs at least three of: lower case, upper case, digits, symbols"
        )
    if len(set(secret)) < 12:
        raise SecretPolicyError("a secret needs at least 12 distinct characters")


class SecretHasher:
    """bcrypt at a fixed cost, run off the event loop.

    ``verify`` is constant-time in the secret (bcrypt compares digests in constant time), and
    ``dummy_verify`` spends the same work when there is nothing to compare against, so an unknown
    ``client_id`` or a secret of the wrong length takes as long to refuse as a wrong secret.
    """

    def __init__(self, cost: int) -> None:
        self.cost = cost
        started = time.perf_counter()
        self._dummy = bcrypt.hashpw(b"artstore-dummy-secret", bcrypt.gensalt(cost))
        self._typical_check_s = time.perf_counter() - started
        self.checks = 0

    def hash_sync(self, secret: str) -> str:
        """The bcrypt hash of ``secret`` (blocking)."""
        return bcrypt.hashpw(secret.encode("utf-8"), bcrypt.gensalt(self.cost)).decode("ascii")

    async def hash(self, secret: str) -> str:
        """The bcrypt hash of ``secret``."""
        return await asyncio.to_thread(self.hash_sync, secret)

    def verify_sync(self, secret: str, hashed: str) -> bool:
        """Does ``secret`` match ``hashed``? (blocking)."""
        started = time.perf_counter()
        try:
            return self._verify_sync(secret, hashed)
        finally:
            self._observe(time.perf_counter() - started)

    def _verify_sync(self, secret: str, hashed: str) -> bool:
        self.checks += 1
        raw = secret.encode("utf-8")
        if len(raw) > MAX_SECRET_BYTES:
            bcrypt.checkpw(b"x", self._dummy)
            return False
        try:
            return bcrypt.checkpw(raw, hashed.encode("ascii"))
        except ValueError:
            return False

    async def verify(self, secret: str, hashed: str) -> bool:
        """Does ``secret`` match ``hashed``?"""
        return await asyncio.to_thread(self.verify_sync, secret, hashed)

    async def dummy_verify(self, secret: str) -> None:
        """Spend one check's worth of work and learn nothing."""
        await asyncio.to_thread(self.verify_sync, secret, self._dummy.decode("ascii"))

    async def wait_like_a_check(self) -> None:
        """Take as long as a check takes lately, without the work.

        Refusing a client id nobody holds must not be told apart by its response time from
        refusing a wrong secret, nor cost a bcrypt check (that made each made-up client id cost
        the service ~0.25 s of CPU). The wait follows the recent duration of real checks, so
        it stays in step when the machine is busy.
        """
        await asyncio.sleep(self._typical_check_s)

    def _observe(self, seconds: float) -> None:
        self._typical_check_s += (seconds - self._typical_check_s) / 8
