"""Prometheus metrics of one storage worker (its own registry, so tests can run several)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from base.consumer_lag import ConsumerLag
from events import CapacityStatus, Mode


class StorageMetrics:
    """Counters, gauges and histograms the worker updates."""

    def __init__(self, element_id: str) -> None:
        self.element_id = element_id
        self.registry = CollectorRegistry()
        self.lag = ConsumerLag(self.registry)
        labels = {"element_id": element_id}
        self.consumed = Counter(
            "artstore_storage_commands_consumed",
            "Commands read from the broker.",
            ["element_id", "topic"],
            registry=self.registry,
        )
        self.stored = Counter(
            "artstore_storage_files_stored", "Files stored.", ["element_id"], registry=self.registry
        ).labels(**labels)
        self.rejected = Counter(
            "artstore_storage_commands_rejected",
            "Commands answered with a rejection, by reason.",
            ["element_id", "reason"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "artstore_storage_dead_letters",
            "Records sent to the DLQ.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.bytes_written = Counter(
            "artstore_storage_bytes_written",
            "Content bytes written.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.latency = Histogram(
            "artstore_storage_batch_seconds",
            "Time to process a batch of commands, durable and announced.",
            ["element_id", "topic"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.recoveries = Counter(
            "artstore_storage_journal_recoveries",
            "Interrupted changes repaired from the journal at start.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.cold_moved = Counter(
            "artstore_storage_cold_files_moved",
            "Files whose content was moved to the element's cold tier (verified).",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.archive_files = Gauge(
            "artstore_storage_archive_files",
            "An ar element's files by where their content is: online, cold, failed (not movable).",
            ["element_id", "where"],
            registry=self.registry,
        )
        self.capacity = Gauge(
            "artstore_storage_capacity_bytes",
            "Configured capacity.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.used = Gauge(
            "artstore_storage_used_bytes",
            "Bytes of stored files.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.free = Gauge(
            "artstore_storage_free_bytes", "Free bytes.", ["element_id"], registry=self.registry
        ).labels(**labels)
        self.consuming_uploads = Gauge(
            "artstore_storage_consuming_uploads",
            "1 while this element consumes its class's upload topic.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.stored_elsewhere = Counter(
            "artstore_storage_uploads_stored_elsewhere",
            "Redelivered uploads another element had stored: re-announced, not stored again.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.batches_rewound = Counter(
            "artstore_storage_upload_batches_rewound",
            "Upload batches put back on the topic after a failure, to be read again.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.placement_timeouts = Counter(
            "artstore_storage_placement_timeouts",
            "Joins or leaves of the upload group that took too long and were retried.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.mode = Gauge(
            "artstore_storage_mode",
            "1 for the element's current mode (edit, rw, ro, ar), 0 for the others.",
            ["element_id", "mode"],
            registry=self.registry,
        )
        self.capacity_status = Gauge(
            "artstore_storage_capacity_status",
            "1 for where free space stands against the floors (ok, warning, critical, full).",
            ["element_id", "status"],
            registry=self.registry,
        )
        self.fixity_failed = Gauge(
            "artstore_storage_fixity_failed_files",
            "Files whose last fixity check failed (until a check finds them sound again).",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.fixity_unreadable = Gauge(
            "artstore_storage_fixity_unreadable_files",
            "Files the storage would not give back during the last full fixity pass.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.fixity_last_pass = Gauge(
            "artstore_storage_fixity_last_pass_timestamp_seconds",
            "When the last full fixity pass finished (Unix time; 0 before the first).",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self.dependency_away = Gauge(
            "artstore_storage_dependency_away",
            "1 while a dependency (storage, staging, database, keys) does not answer and "
            "consuming is paused for it.",
            ["element_id", "dependency"],
            registry=self.registry,
        )
        self.outages = Counter(
            "artstore_storage_outages",
            "Times consuming paused because a dependency was away.",
            ["element_id"],
            registry=self.registry,
        ).labels(**labels)
        self._away: set[str] = set()

    def set_dependencies_away(self, away: Mapping[str, str]) -> None:
        """``away`` (dependency -> why) is what does not answer now."""
        if away and not self._away:
            self.outages.inc()
        for name in self._away | set(away):
            self.dependency_away.labels(self.element_id, name).set(1 if name in away else 0)
        self._away = set(away)

    def set_mode(self, mode: Mode) -> None:
        """The element is in ``mode`` now."""
        for each in Mode:
            self.mode.labels(self.element_id, each.value).set(1 if each is mode else 0)

    def set_capacity_status(self, status: CapacityStatus) -> None:
        """Free space stands at ``status`` now."""
        for each in CapacityStatus:
            self.capacity_status.labels(self.element_id, each.value).set(1 if each is status else 0)
