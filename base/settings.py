"""Settings every ArtStore service shares, read from ``ARTSTORE_*`` environment variables.

Nothing reads the environment at import time: call :func:`load_settings` where a process starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import BrokerSettings, TopicNames
from events.capabilities import supports_idempotent_producer

#: Kafka's default ``message.max.bytes`` is about 1 MB; the broker we test against enforces none,
#: so the limit is ours to enforce before anything is published.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


class Settings(BaseSettings):
    """Connection URLs and shared knobs. Each field maps to ``ARTSTORE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_", extra="ignore")

    env: str = Field("dev", description="Environment name, used in client ids (sa_<env>_...).")
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_idempotence: Literal["auto", "on", "off"] = Field(
        "auto", description="Idempotent producer: auto = where the broker supports it."
    )
    topic_prefix: str = Field("artstore", description="Prefix of every topic name.")
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, gt=1024)
    graceful_timeout_s: float = Field(15.0, gt=0)
    database_url: str = Field(
        "postgresql+asyncpg://postgres@127.0.0.1:5432/artstore",
        description="SQLAlchemy async URL of PostgreSQL.",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0")
    s3_endpoint: str = Field("127.0.0.1:8333", description="host:port of the S3 endpoint.")
    s3_access_key: str = Field("artstore")
    s3_secret_key: str = Field("artstore-secret")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    s3_bucket: str = Field("artstore", description="Bucket for staging and S3 elements.")
    data_dir: Path = Field(Path(".artstore/data"), description="Root of local elements/staging.")
    log_level: str = "INFO"
    log_json: bool = True
    log_format: Literal["json", "text"] | None = Field(
        None, description="json or text; wins over log_json (the --log-format option sets it)."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP endpoint (e.g. http://collector:4318) spans are exported to; "
        "unset (and no OTEL_EXPORTER_OTLP_ENDPOINT): tracing is off.",
    )

    @field_validator("topic_prefix")
    @classmethod
    def _legal_topic_prefix(cls, value: str) -> str:
        TopicNames(value)  # raises ValueError naming the rule
        return value

    def topic_names(self) -> TopicNames:
        """Topic names under this deployment's prefix."""
        return TopicNames(self.topic_prefix)


class MissingEnvFile(FileNotFoundError):
    """``ARTSTORE_ENV_FILE`` names a file that does not exist."""


def env_file() -> Path | None:
    """The env file read under the environment.

    ``ARTSTORE_ENV_FILE`` when set (it must exist); otherwise the running local stack's
    ``stack.env`` (in ``$ARTSTORE_STACK_DIR`` or ``./.artstore/stack``), so commands run next to
    ``artstore stack up`` find its services without further setup.
    """
    explicit = os.environ.get("ARTSTORE_ENV_FILE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise MissingEnvFile(f"ARTSTORE_ENV_FILE={explicit} does not exist")
        return path
    stack_dir = Path(os.environ.get("ARTSTORE_STACK_DIR") or ".artstore/stack")
    candidate = stack_dir / "stack.env"
    return candidate if candidate.is_file() else None


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment and the env file, explicit overrides winning.

    A variable set in the environment wins over the env file (see :func:`env_file`).
    """
    return Settings(_env_file=env_file(), **overrides)  # type: ignore[arg-type]


def broker_settings(settings: Settings, *, client_id: str) -> BrokerSettings:
    """The event contract's broker settings from the shared settings (traced when tracing is
    on: :mod:`base.telemetry`)."""
    from base.telemetry import tracer_provider

    return BrokerSettings(
        bootstrap_servers=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        max_message_bytes=settings.max_message_bytes,
        graceful_timeout_s=settings.graceful_timeout_s,
        client_id=client_id,
        idempotent=settings.kafka_idempotence == "on"
        or (
            settings.kafka_idempotence == "auto"
            and supports_idempotent_producer(settings.kafka_bootstrap)
        ),
        tracer_provider=tracer_provider(),
    )


def configure_service_logging(settings: Settings, service: str) -> None:
    """Log as ``service`` in the format the settings (or ``--log-format``) ask for, and trace
    as ``service`` when an OTLP endpoint is configured
    (:func:`base.telemetry.configure_tracing`): lines written in a span carry its ids."""
    from base.logging import configure_logging
    from base.telemetry import configure_tracing

    configure_logging(
        settings.log_level,
        json_lines=settings.log_json,
        log_format=settings.log_format,
        service=service,
    )
    configure_tracing(settings, service)
