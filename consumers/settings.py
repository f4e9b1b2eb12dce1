"""Settings of the query projector, read from ``ARTSTORE_PROJECTOR_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProjectorSettings(BaseSettings):
    """How the projector consumes and writes. Each field maps to ``ARTSTORE_PROJECTOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_PROJECTOR_", extra="ignore")

    group_id: str = Field(
        "artstore-projection-query", description="Consumer group of the projection."
    )
    db_schema: str = Field("public", description="PostgreSQL schema holding the live projection.")
    batch_size: int = Field(
        2000, gt=0, le=20_000, description="Most records applied per transaction."
    )
    poll_timeout_ms: int = Field(200, gt=0)
    session_timeout_ms: int = Field(
        10_000, ge=1_000, description="How long a silent member keeps its partitions."
    )
    max_backoff_s: float = Field(30.0, gt=0, description="Longest wait between database retries.")
    metrics_port: int | None = Field(None, description="Serve Prometheus metrics on this port.")
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics server binds to; 0.0.0.0 to be scraped from outside "
        "a container.",
    )
    dlq_poll_s: float = Field(
        30.0,
        gt=0,
        description="How often the projector measures the dead-letter topic's depth for "
        "`artstore_dlq_records` (only while it serves metrics).",
    )
    cache_generation_key: str = Field(
        "artstore:query:generation",
        description="Redis key bumped after every batch that changed files or uploads.",
    )
