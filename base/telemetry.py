"""Traces: OpenTelemetry in every ArtStore service, off unless an OTLP endpoint is configured.

:func:`configure_tracing` (called where a service starts, beside its logging) installs a tracer
provider that exports over OTLP/HTTP when ``ARTSTORE_OTLP_ENDPOINT`` or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and
``OTEL_SDK_DISABLED`` is not ``true``). Without one, nothing is installed: brokers get no
telemetry middleware, apps no instrumentation, and batch handlers make no spans (a record's
trace headers are still passed on; see :class:`RecordSpans`).

What services build reads the provider of this module (:func:`tracer_provider`); a test or an
embedding application can trace with a provider of its own inside :func:`tracing`.

Spans: a request (FastAPI instrumentation), a command handled (:func:`consuming`), each record
of a batch (:class:`RecordSpans`), each record published within a trace
(:meth:`events.EventPublisher.send_records`). Nothing starts a trace of its own for work no
one asked for (heartbeats, relayed audit events). See docs/operations.md#traces.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer, TracerProvider

from events.tracing import TraceHeaders, context_of, end_spans, headers_of

if TYPE_CHECKING:
    from fastapi import FastAPI

_provider: TracerProvider | None = None
_tracers: dict[str, Tracer] = {}

#: Requests the facade and auth service do not trace: probes and scrapes.
UNTRACED_URLS = "/health/live,/health/ready,/metrics"


class TracingSettings(Protocol):
    """What tracing reads of the settings (``base.settings.Settings`` has it)."""

    @property
    def otlp_endpoint(self) -> str | None: ...


def tracer_provider() -> TracerProvider | None:
    """The provider ArtStore's services trace with; None when tracing is off."""
    return _provider


def tracer(name: str) -> Tracer | None:
    """A tracer of the current provider; None when tracing is off."""
    provider = _provider
    if provider is None:
        return None
    found = _tracers.get(name)
    if found is None:
        found = _tracers[name] = provider.get_tracer(name)
    return found


@contextlib.contextmanager
def tracing(provider: TracerProvider | None) -> Iterator[None]:
    """Trace with ``provider`` what is built inside the block (brokers, apps, batch handlers);
    the provider in force before is back afterwards."""
    global _provider
    previous = _provider
    _provider = provider
    _tracers.clear()
    try:
        yield
    finally:
        _provider = previous
        _tracers.clear()


def otlp_traces_endpoint(settings: TracingSettings) -> str | None:
    """Where spans go (the OTLP/HTTP traces URL), or None: tracing is off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.otlp_endpoint:
        return settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    if explicit := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return explicit
    if base := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return base.rstrip("/") + "/v1/traces"
    return None


def configure_tracing(settings: TracingSettings, service: str) -> TracerProvider | None:
    """Export this process's spans over OTLP/HTTP, named ``service`` (``OTEL_SERVICE_NAME``
    wins), when an endpoint is configured; else leave tracing off. Returns the provider.

    Every trace is recorded unless ``OTEL_TRACES_SAMPLER`` says otherwise (e.g.
    ``parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG=0.1``)."""
    global _provider
    endpoint = otlp_traces_endpoint(settings)
    if endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = SdkTracerProvider(resource=Resource.create(named))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _provider = provider
    _tracers.clear()
    return provider


def instrument_app(app: FastAPI) -> None:
    """Trace ``app``'s requests (FastAPI instrumentation), continuing the caller's trace from
    its ``traceparent`` header; nothing when tracing is off."""
    provider = _provider
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],
    )


@contextlib.contextmanager
def consuming(
    tracer: Tracer | None, name: str, headers: TraceHeaders | None, **attributes: Any
) -> Iterator[None]:
    """The handling of one record as the current span ``name``: the child of the span the
    record's trace headers name (a new trace when they name none). What is published inside
    continues it. Nothing when tracing is off (``tracer`` None)."""
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span(
        name,
        context=context_of(headers) if headers else None,
        kind=SpanKind.CONSUMER,
        attributes={k: v for k, v in attributes.items() if v is not None},
    ):
        yield


class RecordSpans:
    """One span per record of a batch, each the child of the span the record's trace headers
    name (else of the span current when the batch began), linked to that batch span.

    Spans are started and ended without awaiting anything; they all start when this object is
    made and end together (:meth:`end`), since a batch becomes durable as a whole. With tracing
    off (``tracer`` None) no span is made and :meth:`open` hands back the record's own trace
    headers, so what answers a record still continues the record's trace.
    """

    __slots__ = ("_kind", "_links", "_name", "_spans", "_start", "_tracer")

    def __init__(self, tracer: Tracer | None, name: str, kind: SpanKind = SpanKind.CONSUMER):
        self._tracer = tracer
        self._name = name
        self._kind = kind
        self._spans: list[Span] = []
        self._links: list[Link] | None = None
        self._start = 0
        if tracer is not None:
            batch = trace.get_current_span().get_span_context()
            self._links = [Link(batch)] if batch.is_valid else None
            self._start = time.time_ns()

    @property
    def active(self) -> bool:
        """Whether spans are made (tracing is on)."""
        return self._tracer is not None

    def open(self, headers: TraceHeaders | None, **attributes: Any) -> TraceHeaders | None:
        """A span for a record whose trace headers are ``headers``; returns the trace headers
        of what answers the record (the new span's, or ``headers`` with tracing off)."""
        if self._tracer is None:
            return headers
        span = self._tracer.start_span(
            self._name,
            context=context_of(headers) if headers else None,
            kind=self._kind,
            attributes={k: v for k, v in attributes.items() if v is not None},
            links=self._links,
            start_time=self._start,
        )
        self._spans.append(span)
        return headers_of(span)

    def end(self, error: BaseException | None = None) -> None:
        """End every span opened (marked failed with ``error`` when given)."""
        spans, self._spans = self._spans, []
        end_spans(spans, error)
