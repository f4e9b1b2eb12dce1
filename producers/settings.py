"""How a producer reaches ArtStore: ``ARTSTORE_CLIENT_*`` variables, a TOML file, or arguments.

Shared deployment settings (Kafka bootstrap, topic prefix, S3 endpoint and keys) are also read
from their usual ``ARTSTORE_*`` names, so a client next to a running stack needs only its
credentials.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from base.settings import env_file as shared_env_file
from events import STAGING_PREFIX

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("artstore_client_config", default=None)


class ClientSettings(BaseSettings):
    """Everything the SDK connects to. Each field maps to ``ARTSTORE_CLIENT_<FIELD>``; the
    shared ones (kafka_bootstrap, topic_prefix, s3_*) also to ``ARTSTORE_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="ARTSTORE_CLIENT_", extra="ignore", populate_by_name=True
    )

    auth_url: str = Field("http://127.0.0.1:8080", description="Base URL of the auth service.")
    facade_url: str = Field("http://127.0.0.1:8081", description="Base URL of the HTTP facade.")
    client_id: str | None = Field(None, description="Service account client id.")
    client_secret: SecretStr | None = Field(None, description="Service account secret.")
    scope: str | None = Field(None, description="Scopes to ask for (default: all the role has).")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices(
            "kafka_bootstrap", "ARTSTORE_CLIENT_KAFKA_BOOTSTRAP", "ARTSTORE_KAFKA_BOOTSTRAP"
        ),
    )
    topic_prefix: str = Field(
        "artstore",
        validation_alias=AliasChoices(
            "topic_prefix", "ARTSTORE_CLIENT_TOPIC_PREFIX", "ARTSTORE_TOPIC_PREFIX"
        ),
    )
    max_message_bytes: int = Field(1024 * 1024, gt=1024)

    staging: Literal["s3", "directory"] = Field(
        "s3", description="Stage bytes in an S3 bucket, or in a directory the workers share."
    )
    staging_dir: Path = Field(
        Path(".artstore/data/staging"),
        description="The shared staging directory (the workers' <data_dir>/staging).",
    )
    staging_prefix: str = Field(
        STAGING_PREFIX,
        description="Key prefix of the S3 staging area; objects go under <prefix><client_id>/.",
    )
    s3_endpoint: str = Field(
        "127.0.0.1:8333",
        validation_alias=AliasChoices(
            "s3_endpoint", "ARTSTORE_CLIENT_S3_ENDPOINT", "ARTSTORE_S3_ENDPOINT"
        ),
    )
    s3_access_key: str = Field(
        "artstore",
        validation_alias=AliasChoices(
            "s3_access_key", "ARTSTORE_CLIENT_S3_ACCESS_KEY", "ARTSTORE_S3_ACCESS_KEY"
        ),
    )
    s3_secret_key: SecretStr = Field(
        SecretStr("artstore-secret"),
        validation_alias=AliasChoices(
            "s3_secret_key", "ARTSTORE_CLIENT_S3_SECRET_KEY", "ARTSTORE_S3_SECRET_KEY"
        ),
    )
    s3_secure: bool = Field(
        False,
        validation_alias=AliasChoices(
            "s3_secure", "ARTSTORE_CLIENT_S3_SECURE", "ARTSTORE_S3_SECURE"
        ),
    )
    s3_region: str = Field(
        "us-east-1",
        validation_alias=AliasChoices(
            "s3_region", "ARTSTORE_CLIENT_S3_REGION", "ARTSTORE_S3_REGION"
        ),
    )
    s3_bucket: str = Field(
        "artstore",
        validation_alias=AliasChoices(
            "s3_bucket", "ARTSTORE_CLIENT_S3_BUCKET", "ARTSTORE_S3_BUCKET"
        ),
    )

    request_timeout_s: float = Field(30.0, gt=0, description="Timeout of one HTTP request.")
    publish_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Deadline for connecting to the broker and having upload commands "
        "acknowledged; past it the SDK raises BrokerUnavailable instead of waiting.",
    )
    token_refresh_fraction: float = Field(
        0.8, gt=0, lt=1, description="Refresh a token once this fraction of its lifetime passed."
    )
    chunk_bytes: int = Field(1024 * 1024, ge=4096, description="Streaming chunk size.")
    part_bytes: int = Field(8 * 1024 * 1024, ge=5 * 1024 * 1024, description="S3 part size.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = _CONFIG_FILE.get()
        if config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


class MissingConfigFile(FileNotFoundError):
    """The configuration file named on the command line or in the environment is not there."""


def load_client_settings(
    config_file: Path | None = None, *, env_file: Path | None = None, **overrides: Any
) -> ClientSettings:
    """Settings from (highest first) ``overrides``, the environment, an env file, and the TOML
    ``config_file``; ``None`` overrides are ignored, so CLI flags left unset fall through.

    The env file is ``env_file`` if given, else the one every ``artstore`` command reads
    (:func:`base.settings.env_file`: ``ARTSTORE_ENV_FILE``, e.g. the ``artstore-data/
    artstore.env`` that ``artstore dev`` writes, or the running local stack's ``stack.env``).
    """
    if config_file is not None and not config_file.is_file():
        raise MissingConfigFile(f"configuration file {config_file} does not exist")
    dotenv = env_file if env_file is not None else shared_env_file()
    token = _CONFIG_FILE.set(config_file)
    try:
        given = {k: v for k, v in overrides.items() if v is not None}
        return ClientSettings(_env_file=dotenv, **given)
    finally:
        _CONFIG_FILE.reset(token)
