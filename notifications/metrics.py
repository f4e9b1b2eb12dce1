"""Prometheus metrics of signed notifications (one set per dispatcher process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUEUED = Counter(
    "artstore_webhook_deliveries_queued_total",
    "Deliveries written to the queue, by kind (once per webhook and event).",
    ["kind"],
)
SENT = Counter(
    "artstore_webhook_deliveries_sent_total",
    "Deliveries a receiver accepted (2xx), by kind.",
    ["kind"],
)
FAILED = Counter(
    "artstore_webhook_deliveries_failed_total",
    "Deliveries given up after the last retry, by kind.",
    ["kind"],
)
PENDING = Gauge(
    "artstore_webhook_deliveries_pending",
    "Deliveries waiting for an attempt that succeeds (measured every few seconds).",
)
ATTEMPTS = Counter(
    "artstore_webhook_attempts_total",
    "Attempts, by result: accepted (2xx), refused (another status), error (no answer, a "
    "refused target, a secret that does not open).",
    ["result"],
)
ATTEMPT_SECONDS = Histogram(
    "artstore_webhook_attempt_seconds",
    "Time one attempt took, connect to status line.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
FACTS = Counter(
    "artstore_notifications_facts_total",
    "Fact records the dispatcher read, by outcome (ignored: no notification kind; "
    "notified: matched at least one webhook; unmatched; undecodable).",
    ["outcome"],
)
DB_RETRIES = Counter(
    "artstore_notifications_db_retries_total",
    "Batches retried because the database failed.",
)
