"""W3C trace context on Kafka records: the ``traceparent`` and ``tracestate`` headers.

Only the OpenTelemetry API is used here (the producer SDK shares this module): a process that
has no tracer provider creates no spans, but the headers a record carries can still be read
and passed on. A record's trace headers are kept as a small ``{name: value}`` mapping, which is
what an :class:`~events.Outgoing` carries into the headers of the record it becomes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)

TraceHeaders = Mapping[str, str]
"""``traceparent`` (and ``tracestate`` when there is one), as record headers carry them."""

_PROPAGATOR = TraceContextTextMapPropagator()


def trace_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The trace headers among decoded (lower-cased) headers; None when there is no parent."""
    parent = headers.get(TRACEPARENT)
    if not parent:
        return None
    found = {TRACEPARENT: parent}
    state = headers.get(TRACESTATE)
    if state:
        found[TRACESTATE] = state
    return found


def record_trace_headers(
    headers: Iterable[tuple[str, bytes | None]] | None,
) -> dict[str, str] | None:
    """The trace headers of a consumer record's raw headers; None when it carries none."""
    found: dict[str, str] | None = None
    for name, raw in headers or ():
        if raw and name in TRACE_HEADERS:
            if found is None:
                found = {}
            found[name] = raw.decode("ascii", "replace")
    if found is None or TRACEPARENT not in found:
        return None
    return found


def context_of(headers: TraceHeaders) -> Context:
    """The remote parent that ``headers`` name (an empty context if they name none)."""
    return _PROPAGATOR.extract(headers)


def headers_of(span: trace.Span) -> dict[str, str] | None:
    """The trace headers that make ``span`` the parent of what a record leads to."""
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier


def current_headers() -> dict[str, str] | None:
    """The trace headers of the current span (None outside any span)."""
    return headers_of(trace.get_current_span())


def end_spans(spans: Sequence[trace.Span], error: BaseException | None = None) -> None:
    """End ``spans``, each marked failed with ``error`` when one is given."""
    for span in spans:
        if error is not None:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
        span.end()


@contextlib.contextmanager
def spans_ended(spans: Sequence[trace.Span]) -> Iterator[None]:
    """Run the block, then end ``spans``: failed with what the block raised, if it did."""
    try:
        yield
    except BaseException as exc:
        end_spans(spans, exc)
        raise
    end_spans(spans)
