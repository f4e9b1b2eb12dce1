"""Traces: off unless configured, trace headers carried on records, per-record and publish spans."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from base import telemetry
from base.settings import Settings
from events import FileStored, TopicNames, decode, encode, new_event
from events.tracing import TRACEPARENT, record_trace_headers
from tests.factories import sample

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@pytest.fixture
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with telemetry.tracing(provider):
        yield exporter
    provider.shutdown()


@pytest.mark.usefixtures("no_otel_environment")
def test_tracing_is_off_without_an_endpoint() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert telemetry.otlp_traces_endpoint(settings) is None
    assert telemetry.configure_tracing(settings, "artstore-test") is None
    assert telemetry.tracer_provider() is None
    assert telemetry.tracer("artstore.test") is None


@pytest.mark.usefixtures("no_otel_environment")
def test_the_endpoint_comes_from_the_setting_or_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert telemetry.otlp_traces_endpoint(settings) == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom")
    assert telemetry.otlp_traces_endpoint(settings) == "http://traces:4318/custom"
    own = Settings(_env_file=None, otlp_endpoint="http://mine:4318")  # type: ignore[call-arg]
    assert telemetry.otlp_traces_endpoint(own) == "http://mine:4318/v1/traces"
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert telemetry.otlp_traces_endpoint(own) is None


def test_an_event_carries_its_trace_headers_onto_the_record_and_back() -> None:
    envelope = new_event(sample(FileStored), source="test")
    record = encode(envelope, TopicNames("unit"), max_bytes=1 << 20, trace={TRACEPARENT: PARENT})
    assert record.headers[TRACEPARENT] == PARENT
    raw = [(k, v.encode()) for k, v in record.headers.items()]
    assert record_trace_headers(raw) == {TRACEPARENT: PARENT}
    received = decode(record.value, key=record.key, headers=raw, max_bytes=1 << 20)
    assert received.headers[TRACEPARENT] == PARENT
    untraced = encode(envelope, TopicNames("unit"), max_bytes=1 << 20)
    assert TRACEPARENT not in untraced.headers
    assert record_trace_headers([(k, v.encode()) for k, v in untraced.headers.items()]) is None


def test_with_tracing_off_a_record_s_trace_headers_are_passed_on_unchanged() -> None:
    spans = telemetry.RecordSpans(None, "artstore.store")
    assert not spans.active
    assert spans.open({TRACEPARENT: PARENT}) == {TRACEPARENT: PARENT}
    assert spans.open(None) is None
    spans.end()


def test_each_record_gets_a_child_of_its_own_trace_linked_to_the_batch(
    exporter: InMemorySpanExporter,
) -> None:
    tracer = telemetry.tracer("artstore.test")
    assert tracer is not None
    with tracer.start_as_current_span("batch") as batch:
        spans = telemetry.RecordSpans(tracer, "artstore.store")
        answered = spans.open({TRACEPARENT: PARENT}, **{"artstore.file_id": "f-1"})
        spans.open(None)
    spans.end()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["artstore.store", "artstore.store", "batch"]
    traced, untraced = [s for s in exporter.get_finished_spans() if s.name == "artstore.store"]
    assert traced.context is not None
    assert traced.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert traced.parent is not None
    assert traced.parent.span_id == 0xB7AD6B7169203331
    assert [link.context.span_id for link in traced.links] == [batch.get_span_context().span_id]
    assert (traced.attributes or {})["artstore.file_id"] == "f-1"
    assert answered is not None
    assert answered[TRACEPARENT] == (
        f"00-0af7651916cd43dd8448eb211c80319c-{traced.context.span_id:016x}-01"
    )
    # A record without trace headers is traced within the batch.
    assert untraced.parent is not None
    assert untraced.parent.span_id == batch.get_span_context().span_id


def test_a_failed_batch_marks_each_record_s_span_failed(
    exporter: InMemorySpanExporter,
) -> None:
    spans = telemetry.RecordSpans(telemetry.tracer("artstore.test"), "artstore.store")
    spans.open({TRACEPARENT: PARENT})
    spans.end(OSError("disk gone"))
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert "disk gone" in (span.status.description or "")


def test_a_record_is_published_under_the_span_it_names_else_the_current_one(
    exporter: InMemorySpanExporter,
) -> None:
    from events.broker import _publish_span

    tracer = telemetry.tracer("artstore.test")
    assert tracer is not None
    envelope = new_event(sample(FileStored), source="test")
    names = TopicNames("unit")
    untraced = encode(envelope, names, max_bytes=1 << 20)
    assert _publish_span(tracer, untraced) is None, "a heartbeat starts no trace"
    named = _publish_span(
        tracer, encode(envelope, names, max_bytes=1 << 20, trace={TRACEPARENT: PARENT})
    )
    assert named is not None
    named.end()
    with tracer.start_as_current_span("request") as request:
        current = _publish_span(tracer, untraced)
        assert current is not None
        current.end()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    published = [s for s in exporter.get_finished_spans() if s.name == "unit.files publish"]
    assert len(published) == 2
    first, second = published
    assert first.kind is SpanKind.PRODUCER
    assert first.parent is not None
    assert first.parent.span_id == 0xB7AD6B7169203331
    assert second.parent is not None
    assert second.parent.span_id == request.get_span_context().span_id
    assert set(spans) == {"unit.files publish", "request"}
