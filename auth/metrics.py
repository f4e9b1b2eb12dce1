"""Prometheus metrics of the auth service, in a registry per app instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AuthMetrics:
    """Counters and histograms the auth service exports on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tokens_issued = Counter(
            "artstore_auth_tokens_issued", "Access tokens issued.", ["role"], registry=r
        )
        self.token_failures = Counter(
            "artstore_auth_token_failures", "Refused token requests.", ["error"], registry=r
        )
        self.rate_limited = Counter(
            "artstore_auth_rate_limited", "Requests refused by the rate limit.", registry=r
        )
        self.redis_unavailable = Counter(
            "artstore_auth_redis_unavailable",
            "Operations that could not reach Redis.",
            ["operation"],
            registry=r,
        )
        self.issue_seconds = Histogram(
            "artstore_auth_issue_seconds",
            "Time to issue a token, bcrypt included.",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.key_rotations = Counter(
            "artstore_auth_key_rotations", "Signing keys created.", registry=r
        )
        self.unaudited_refusals = Counter(
            "artstore_auth_unaudited_refusals",
            "Refused account changes from a source over its failed-authentication limit: "
            "counted here instead of audited.",
            registry=r,
        )
        self.outbox_pending = Gauge(
            "artstore_auth_outbox_pending", "Audit events waiting in the outbox.", registry=r
        )
