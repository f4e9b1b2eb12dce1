"""Prometheus metrics of the facade."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "artstore_facade_requests_total", "HTTP requests by route and status.", ["route", "status"]
)
LATENCY = Histogram(
    "artstore_facade_request_seconds",
    "HTTP request latency by route (time to response headers).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SEARCH_CACHE = Counter("artstore_facade_search_cache_total", "Search cache lookups.", ["outcome"])
BYTES_SENT = Counter("artstore_facade_content_bytes_total", "Content bytes streamed to clients.")
STAGED_BYTES = Counter("artstore_facade_staged_bytes_total", "Upload bytes written to staging.")
