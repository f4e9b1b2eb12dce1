"""Settings of the auth service, read from ``ARTSTORE_AUTH_*`` environment variables."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from base.settings import env_file

#: The verifier never tolerates more clock skew than this, whatever the configuration says.
MAX_LEEWAY = timedelta(seconds=60)


class AuthSettings(BaseSettings):
    """Token, key, account and rate-limit policy. Each field maps to ``ARTSTORE_AUTH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_AUTH_", extra="ignore")

    issuer: str = Field("http://127.0.0.1:8080", description="`iss` of every token we sign.")
    audience: str = Field("artstore", description="`aud` of every token we sign.")
    token_ttl: timedelta = Field(timedelta(minutes=15), gt=timedelta(0), le=timedelta(hours=1))
    leeway: timedelta = Field(timedelta(seconds=30), ge=timedelta(0), le=MAX_LEEWAY)

    key_rotation_period: timedelta = Field(timedelta(days=30), gt=timedelta(0))
    key_check_interval: timedelta = Field(timedelta(minutes=1), gt=timedelta(0))
    key_publish_margin: timedelta = Field(
        timedelta(minutes=5),
        ge=timedelta(0),
        description="Extra time a retired key stays in the JWKS after its last token expired.",
    )
    max_command_age: timedelta = Field(
        timedelta(hours=24),
        gt=timedelta(0),
        description="The longest a command may wait in a topic before a worker refuses it (the "
        "workers' ARTSTORE_STORAGE_MAX_COMMAND_AGE_S, or longer): retired keys stay published "
        "and revocations stay on the deny-list that much longer than a token lives.",
    )
    key_encryption_secret: SecretStr | None = Field(
        None, description="When set, private keys are stored encrypted with this passphrase."
    )

    bcrypt_cost: int = Field(12, ge=4, le=16)
    secret_lifetime: timedelta = Field(timedelta(days=90), gt=timedelta(0))
    secret_grace_period: timedelta = Field(timedelta(hours=24), ge=timedelta(0))
    secret_history: int = Field(5, ge=1, le=24, description="Last N secrets that can't be reused.")

    default_rate_limit: int = Field(100, gt=0, description="Requests per window per client.")
    rate_limit_window: timedelta = Field(timedelta(minutes=1), gt=timedelta(0))
    failed_auth_limit_per_source: int = Field(
        30,
        gt=0,
        description="Failed client authentications per window from one address; beyond it, "
        "that address is refused (429) without a check, while the client id itself stays usable.",
    )
    redis_down_policy: Literal["allow", "deny"] = "allow"
    redis_prefix: str = Field("artstore:auth:", description="Prefix of every Redis key we own.")

    bootstrap_admin_name: str = "admin"
    bootstrap_admin_secret: SecretStr | None = None

    outbox_batch_size: int = Field(500, gt=0)
    outbox_poll_interval: timedelta = Field(timedelta(seconds=1), gt=timedelta(0))
    outbox_max_backoff: timedelta = Field(
        timedelta(seconds=30),
        gt=timedelta(0),
        description="Longest wait between relay attempts while Kafka is unreachable.",
    )
    outbox_retention: timedelta = Field(timedelta(days=1), ge=timedelta(0))

    jwks_max_age: timedelta = Field(timedelta(minutes=5), ge=timedelta(0))

    @model_validator(mode="after")
    def _publish_longer_than_tokens_live(self) -> AuthSettings:
        if self.key_rotation_period <= self.token_ttl + self.leeway:
            raise ValueError("key_rotation_period must be longer than token_ttl + leeway")
        return self


def load_auth_settings(**overrides: object) -> AuthSettings:
    """Read ``ARTSTORE_AUTH_*`` from the environment, then from the same env file as
    ``load_settings`` (the environment wins), with explicit overrides taking precedence.
    """
    return AuthSettings(_env_file=env_file(), **overrides)  # type: ignore[arg-type]
