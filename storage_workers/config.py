"""One storage worker's configuration: ``ARTSTORE_STORAGE_*`` variables or CLI flags."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from events import ElementBackend, LocalBackend, Mode, S3Backend
from storage_workers.capacity import DEFAULT_FLOORS, Floor, Floors


class Placement(StrEnum):
    """Sequential fill (one element of a class at a time) or spread (all eligible elements)."""

    SEQUENTIAL = "sequential"
    SPREAD = "spread"


class WorkerConfig(BaseSettings):
    """The element a worker serves and how it behaves. Each field maps to
    ``ARTSTORE_STORAGE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_STORAGE_", extra="ignore")

    element_id: str = Field("se-01", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    mode: Mode = Field(Mode.RW, description="Mode of a new element (element.json wins after).")
    priority: int = Field(0, ge=0, description="Lower numbers fill first.")
    backend: Literal["local", "s3"] = "local"
    root: Path | None = Field(None, description="Local elements: the directory.")
    s3_bucket: str | None = Field(None, description="S3 elements: the bucket (default: shared).")
    s3_prefix: str = Field("", description="S3 elements: key prefix, e.g. the element id.")
    capacity_bytes: int = Field(10 * 1000**4, gt=0)
    retention_days: int | None = Field(None, ge=1)
    floor_warning_percent: float | None = None
    floor_warning_bytes: int | None = None
    floor_critical_percent: float | None = None
    floor_critical_bytes: int | None = None
    floor_full_percent: float | None = None
    floor_full_bytes: int | None = None
    placement: Placement = Placement.SEQUENTIAL
    heartbeat_interval_s: float = Field(5.0, gt=0)
    peer_timeout_s: float | None = Field(None, description="Default: 3 heartbeat intervals.")
    ttl_sweep_interval_s: float = Field(60.0, gt=0)
    staging_dir: Path | None = Field(None, description="Default: <data_dir>/staging.")
    staging_bucket: str | None = Field(
        None, description="The S3 staging bucket (default: the shared ARTSTORE_S3_BUCKET)."
    )
    staging_prefix: str = Field(
        "staging/",
        pattern=r"^([A-Za-z0-9_.-]+/)+$",
        description="Key prefix of the S3 staging area; a caller's claim checks must name keys "
        "under <prefix><client_id>/ in the staging bucket, nothing else is read or removed.",
    )
    max_command_age_s: float = Field(24 * 3600, gt=0)
    replay: bool = Field(False, description="Accept commands older than max_command_age_s.")
    jwks_url: str | None = None
    jwks_file: Path | None = Field(None, description="A JWKS document on disk instead of a URL.")
    token_issuer: str = "http://127.0.0.1:8080"
    token_audience: str = "artstore"
    revocation_prefix: str = Field(
        "artstore:auth:",
        description="The auth service's Redis prefix (ARTSTORE_AUTH_REDIS_PREFIX): where its "
        "deny-list of revoked tokens lives and is announced.",
    )
    health_port: int | None = Field(None, ge=0, le=65535)
    health_host: str = Field(
        "127.0.0.1",
        description="Address the health and metrics server binds to; 0.0.0.0 in a container "
        "whose health is probed, or whose metrics are scraped, from outside.",
    )
    batch_max_records: int = Field(500, gt=0)
    placement_timeout_s: float = Field(
        60.0,
        gt=0,
        description="Longest a join or leave of the upload group (or a heartbeat) may take "
        "before it is abandoned and retried.",
    )
    upload_claims: bool = Field(
        True,
        description="Claim each upload in the shared registry (PostgreSQL, "
        "ARTSTORE_DATABASE_URL) before storing it, so a redelivery never stores it twice.",
    )
    claim_lease_s: float = Field(
        300.0,
        gt=0,
        description="An upload claimed this long ago and still unfinished may be taken over "
        "even from a live element.",
    )
    retry_attempts: int = Field(5, ge=1)
    retry_backoff_s: float = Field(0.2, gt=0)
    service_fault_window_s: float = Field(
        60.0,
        ge=0,
        description="How long a request that the element's storage or the staging area failed "
        "on its side (an HTTP 5xx, no answer) while its probe answers is tried again before "
        "the failures count against the record's retry attempts.",
    )
    session_timeout_ms: int = Field(10_000, ge=1000, description="Consumer-group session timeout.")
    idle_wait_ms: int = Field(
        50,
        ge=1,
        description="How long an idle consumer waits for commands before polling again, at the "
        "broker (fetch_max_wait_ms) and between empty upload batches (batch_timeout_ms): a "
        "command arriving while idle is picked up within about this long. The client defaults "
        "(500 ms; 200 ms plus a 200 ms sleep) dominate a single upload's latency.",
    )

    fixity_enabled: bool = Field(True, description="Run the element's fixity auditor.")
    fixity_period_days: float = Field(
        30.0, gt=0, description="Every file and sidecar is re-checked at least this often."
    )
    fixity_read_mb_per_s: float | None = Field(
        64.0, gt=0, description="Read rate cap of the auditor (MB/s); unset: unbounded."
    )
    fixity_files_per_s: float | None = Field(
        500.0, gt=0, description="Files per second cap of the auditor; unset: unbounded."
    )
    fixity_confirmations: int = Field(3, ge=0, description="Re-reads of a mismatch.")
    fixity_read_attempts: int = Field(4, ge=1, description="Tries of a read the storage fails.")
    fixity_concurrency: int = Field(4, ge=1, description="Files read at once by the auditor.")
    fixity_processes: int | None = Field(
        None,
        ge=0,
        description="Helper processes that check files of a local element with the auditor "
        "while its reads are unbounded (neither rate set); unset: one fewer than the cores.",
    )
    fixity_idle_s: float = Field(60.0, gt=0, description="How often to look whether a pass is due.")
    cold_backend: Literal["local", "s3"] | None = Field(
        None,
        description="Where the content of this element goes when it moves ro -> ar: a "
        "directory (standing for tape) or an S3 bucket/prefix. Unset: an ar element keeps its "
        "content in place, on its own storage.",
    )
    cold_root: Path | None = Field(
        None, description="Local cold tier: the directory (default <data_dir>/cold/<element>)."
    )
    cold_s3_bucket: str | None = Field(
        None, description="S3 cold tier: the bucket (default: the shared ARTSTORE_S3_BUCKET)."
    )
    cold_s3_prefix: str | None = Field(
        None, description="S3 cold tier: the key prefix (default cold/<element>; never empty)."
    )
    archive_batch_files: int = Field(
        32, ge=1, description="Files moved to the cold tier per journalled batch."
    )
    restore_element_id: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="The edit element that keeps restored copies of this element's archived "
        "files; unset: restore requests fail with restore_element_unavailable.",
    )
    restore_ttl_s: float = Field(
        30 * 86400.0, gt=0, description="How long a restored copy is kept (this element's own)."
    )
    restore_warning_s: float = Field(
        3 * 86400.0, ge=0, description="RestoreExpiring is announced this long before expiry."
    )
    lease_ttl_s: float = Field(
        30.0,
        gt=0,
        description="S3 elements: the writer lease's lifetime; renewed every heartbeat, so it "
        "must be a few heartbeat intervals long.",
    )

    @property
    def peer_timeout(self) -> float:
        """Seconds without a heartbeat after which a peer counts as gone."""
        return self.peer_timeout_s or 3 * self.heartbeat_interval_s

    def floors(self) -> Floors:
        """The capacity floors of this element's class, with any overrides applied."""
        base = DEFAULT_FLOORS[Mode.EDIT if self.mode is Mode.EDIT else Mode.RW]

        def pick(floor: Floor, percent: float | None, fixed: int | None) -> Floor:
            return Floor(
                floor.percent if percent is None else percent,
                floor.fixed_bytes if fixed is None else fixed,
            )

        return Floors(
            pick(base.warning, self.floor_warning_percent, self.floor_warning_bytes),
            pick(base.critical, self.floor_critical_percent, self.floor_critical_bytes),
            pick(base.full, self.floor_full_percent, self.floor_full_bytes),
        )

    def cold_location(
        self, *, data_dir: Path, s3_endpoint: str, s3_bucket: str, s3_secure: bool, s3_region: str
    ) -> ElementBackend | None:
        """Where the element's cold tier lives (None: no cold tier, content archived in place).
        It belongs to this element alone: its worker is its one writer."""
        if self.cold_backend is None:
            return None
        if self.cold_backend == "local":
            root = self.cold_root or data_dir / "cold" / self.element_id
            return LocalBackend(root=str(root.resolve()))
        return S3Backend(
            endpoint=s3_endpoint,
            bucket=self.cold_s3_bucket or s3_bucket,
            prefix=self.cold_s3_prefix or f"cold/{self.element_id}",
            secure=s3_secure,
            region=s3_region,
        )

    def element_backend(
        self, *, data_dir: Path, s3_endpoint: str, s3_bucket: str, s3_secure: bool, s3_region: str
    ) -> ElementBackend:
        """Where the element lives."""
        if self.backend == "local":
            root = self.root or data_dir / "elements" / self.element_id
            return LocalBackend(root=str(root.resolve()))
        return S3Backend(
            endpoint=s3_endpoint,
            bucket=self.s3_bucket or s3_bucket,
            prefix=self.s3_prefix,
            secure=s3_secure,
            region=s3_region,
        )
