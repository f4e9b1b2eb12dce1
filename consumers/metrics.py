"""Prometheus metrics of the projection (one set per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from base.consumer_lag import ConsumerLag

EVENTS = Counter(
    "artstore_projector_events_total",
    "Records the projector handled, by topic and outcome (applied, skipped, dead_lettered).",
    ["topic", "outcome"],
)
BATCH_SECONDS = Histogram(
    "artstore_projector_batch_seconds",
    "Time to decode and apply one batch in one transaction.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "artstore_projector_batch_records",
    "Records per applied batch.",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
)
LAG = Gauge(
    "artstore_projector_lag_records",
    "Records between the projector's position and the partition's high watermark.",
    ["topic", "partition"],
)
DB_RETRIES = Counter(
    "artstore_projector_db_retries_total", "Batches retried because the database failed."
)
GAPS = Counter(
    "artstore_projector_gap_records_total",
    "Offsets gone past without a record: removed by retention before they were applied, or "
    "absent (the broker answered past them, consistently, for a while).",
    ["topic", "reason"],
)
REWINDS = Counter(
    "artstore_projector_rewinds_total",
    "Times the consumer sought back to the projection's stored position.",
)
CONSUMER_LAG = ConsumerLag()
"""Lag in records and seconds of the projector's group, like every other consumer's."""
