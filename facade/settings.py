"""Settings of the HTTP facade, read from ``ARTSTORE_FACADE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FacadeSettings(BaseSettings):
    """Token checks, search limits, cache and staging. Each maps to ``ARTSTORE_FACADE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_FACADE_", extra="ignore")

    jwks_url: str = Field("http://127.0.0.1:8080/.well-known/jwks.json")
    issuer: str = Field("http://127.0.0.1:8080", description="Expected `iss` of access tokens.")
    audience: str = Field("artstore", description="Expected `aud` of access tokens.")
    revocation_prefix: str = Field(
        "artstore:auth:",
        description="The auth service's Redis prefix (ARTSTORE_AUTH_REDIS_PREFIX): where its "
        "deny-list of revoked tokens lives and is announced.",
    )
    host: str = "127.0.0.1"
    port: int = 8081
    metrics_port: int | None = Field(
        None,
        description="Also serve Prometheus metrics, without a token, on this port: for a "
        "scraper on the internal network (`/metrics` on `port` needs `audit:read`).",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the metrics port binds to; 0.0.0.0 to be scraped from outside a "
        "container (never publish it).",
    )

    page_size: int = Field(50, ge=1, le=500)
    max_page_size: int = Field(200, ge=1, le=1000)
    rank_candidates: int = Field(
        5000,
        ge=100,
        le=100_000,
        description="Relevance ranks at most this many matches (the newest), so broad queries "
        "stay fast; responses say when the cap was reached.",
    )
    max_query_length: int = Field(512, ge=16, le=4096)
    statement_timeout_ms: int = Field(5000, ge=100)

    cache_ttl_s: int = Field(30, ge=0, description="0 disables the search cache.")
    cache_prefix: str = "artstore:query:"
    cache_generation_key: str = Field(
        "artstore:query:generation", description="Bumped by the projector (see consumers)."
    )

    audit_buffer: int = Field(
        10_000,
        ge=1,
        description="Audit events journaled and not yet on the broker (Kafka away); when that "
        "many wait, downloads answer 503.",
    )
    audit_journal_dir: Path | None = Field(
        None,
        description="Where facade instances journal their audit events until the broker has "
        "them (fsync'd, kept across restarts): each in a subdirectory named after it. A facade "
        "also relays the journals there that no running facade holds. A directory of its own; "
        "default <ARTSTORE_DATA_DIR>/facade-audit.",
    )
    instance: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,100}$",
        description="This facade instance's name, unique among the facades sharing "
        "audit_journal_dir and the same across its restarts; default <hostname>-<port>.",
    )
    staging: Literal["s3", "local"] = Field(
        "s3", description="Where uploads are staged: the S3 bucket or data_dir/staging."
    )
    staging_prefix: str = Field(
        "staging/",
        description="Key prefix of the S3 staging area; uploads go under <prefix><client_id>/.",
    )
    max_upload_bytes: int = Field(50 * 1024**3, gt=0)

    dlq_timeout_s: float = Field(
        20.0,
        gt=0,
        le=600,
        description="Bound on reading the dead-letter topic for /api/v1/dlq and the console's "
        "pipeline page; beyond it they answer 503.",
    )

    rate_limit: int = Field(0, ge=0, description="Requests per window per client; 0 = off.")
    rate_limit_window_s: float = Field(60.0, gt=0)
