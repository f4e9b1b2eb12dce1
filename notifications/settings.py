"""Settings of signed notifications, read from ``ARTSTORE_NOTIFICATIONS_*`` variables.

The facade (registrations) and the dispatcher (deliveries) both read them: the secret keys and
the target policy must be the same in both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class NotificationSettings(BaseSettings):
    """Webhooks: secrets at rest, where deliveries may go, and how they are retried.
    Each field maps to ``ARTSTORE_NOTIFICATIONS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_NOTIFICATIONS_", extra="ignore")

    secret_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Keys that encrypt webhook secrets at rest, comma-separated `<id>:<base64 "
        "of 32 bytes>`; the first encrypts new secrets, every one decrypts. Unset: webhooks "
        "can't be registered and the dispatcher does not start.",
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Networks (CIDR, comma-separated) deliveries may go to even though they "
        "are not public, e.g. `127.0.0.1/32` for a receiver on the same machine in tests.",
    )
    denied_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Public networks (CIDR) deliveries must never go to, on top of every "
        "private, loopback, link-local and reserved range (refused unless allowed above).",
    )
    retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [30.0, 300.0, 1800.0],
        description="Waits before the 2nd, 3rd, ... attempt (comma-separated seconds); after "
        "the last one fails the delivery is marked failed.",
    )
    request_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Longest an attempt may take, connect to last byte."
    )
    concurrency: int = Field(32, ge=1, le=1000, description="Attempts in flight at once.")
    max_in_flight_per_account: int = Field(
        8,
        ge=1,
        le=1000,
        description="Attempts of one account's deliveries in flight at once (over every "
        "dispatcher), so one account's slow receivers leave slots for the others.",
    )
    max_webhooks_per_account: int = Field(25, ge=1, le=1000)
    group_id: str = Field("artstore-notifications", description="Consumer group of the facts.")
    batch_size: int = Field(1000, ge=1, le=20_000, description="Most facts read per batch.")
    poll_timeout_ms: int = Field(200, gt=0)
    session_timeout_ms: int = Field(10_000, ge=1_000)
    sender_poll_s: float = Field(
        1.0, gt=0, description="How often due retries are looked for when nothing else wakes."
    )
    metrics_port: int | None = Field(None, description="Serve health and metrics on this port.")
    metrics_host: str = "127.0.0.1"

    @field_validator("secret_keys", "allowed_networks", "denied_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _delays(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("retry_delays_s")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays are seconds, none negative")
        return value
