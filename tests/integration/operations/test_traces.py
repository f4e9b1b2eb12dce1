"""One upload is one trace: the SDK's publish, the worker's store and announce, the projector's
projection and the facade's status read, across Kafka and HTTP.

The whole pipeline runs in this process (tests/pipeline.py) on the real stack, tracing with a
provider whose spans are kept in memory; the SDK uploads with the same provider. Each span is
found by what it is about (its name, the file id, the topic), never by its trace id, and must
descend from the upload's own span through its parents: a service that dropped or replaced the
``traceparent`` on the way would start another trace, and the test fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from base import telemetry
from base.settings import Settings
from events import Topic
from producers import ArtStoreClient
from tests.helpers import wait_until
from tests.pipeline import Pipeline, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

FILE_STORED = "artstore.file.stored.v1"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture(scope="module")
async def pipeline(
    settings: Settings, redis_namespace: str, provider: TracerProvider
) -> AsyncIterator[Pipeline]:
    """The pipeline, every service of it built and run while tracing is on."""
    with telemetry.tracing(provider):
        async with running_pipeline(settings, redis_namespace) as running:
            yield running


class Spans:
    """The finished spans, found by what they are about."""

    def __init__(self, finished: Sequence[ReadableSpan]) -> None:
        self.all = list(finished)
        self.by_id = {s.context.span_id: s for s in self.all if s.context is not None}

    def named(self, name: str, **attributes: Any) -> list[ReadableSpan]:
        return [
            s
            for s in self.all
            if s.name == name
            and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
        ]

    def ancestors(self, span: ReadableSpan) -> list[ReadableSpan]:
        """``span``'s parent, its parent's parent, ... as far as finished spans go."""
        chain = []
        while span.parent is not None and span.parent.span_id in self.by_id:
            span = self.by_id[span.parent.span_id]
            chain.append(span)
        return chain


def one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, f"{what}: {len(found)} spans, wanted one"
    return found[0]


async def test_one_upload_is_one_trace_from_publish_to_status_read(
    pipeline: Pipeline, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    topics = pipeline.settings.topic_names()
    async with ArtStoreClient(pipeline.client_settings(), tracer_provider=provider) as client:
        handle = await client.upload(b"one trace, five services\n", filename="traced.txt")
        stored = await handle.wait(timeout=60)
    assert stored.file_id == handle.file_id
    file_id = str(handle.file_id)
    publish_of_command = f"{topics.name(Topic.UPLOADS_RW)} publish"
    announce = f"{topics.name(Topic.FILES)} publish"
    status_read = "GET /api/v1/uploads/{file_id}"

    def finished() -> Spans:
        return Spans(exporter.get_finished_spans())

    def every_step_finished() -> bool:
        spans = finished()
        return all(
            (
                spans.named("artstore.upload", **{"artstore.file_id": file_id}),
                spans.named(publish_of_command, **{"messaging.kafka.message.key": file_id}),
                spans.named("artstore.store", **{"artstore.file_id": file_id}),
                spans.named(announce, **{"messaging.kafka.message.key": file_id}),
                spans.named(
                    "artstore.project",
                    **{"artstore.subject": file_id, "artstore.event_type": FILE_STORED},
                ),
                [s for s in spans.named(status_read) if file_id in str(s.attributes)],
            )
        )

    # The services end their spans a moment after the effect the SDK saw.
    await wait_until(every_step_finished, 15, interval=0.1, message="every step's span")
    spans = finished()

    upload = one(spans.named("artstore.upload", **{"artstore.file_id": file_id}), "upload")
    publish = one(
        spans.named(publish_of_command, **{"messaging.kafka.message.key": file_id}), "publish"
    )
    store = one(spans.named("artstore.store", **{"artstore.file_id": file_id}), "store")
    announced = one(spans.named(announce, **{"messaging.kafka.message.key": file_id}), "announce")
    project = one(
        spans.named(
            "artstore.project", **{"artstore.subject": file_id, "artstore.event_type": FILE_STORED}
        ),
        "project FileStored",
    )
    reads = [s for s in spans.named(status_read) if file_id in str(s.attributes)]
    assert reads, "no status read"

    assert upload.parent is None, "the upload starts its trace"
    assert publish.kind is SpanKind.PRODUCER
    assert announced.kind is SpanKind.PRODUCER
    assert store.attributes is not None
    assert store.attributes["artstore.element_id"] == pipeline.element_id
    assert upload.context is not None
    trace_id = upload.context.trace_id
    for span in (publish, store, announced, project, *reads):
        assert span.context is not None
        assert span.context.trace_id == trace_id, f"{span.name} is in another trace"

    # Causality, not just the same id: each step descends from the one before it.
    assert upload in spans.ancestors(publish)
    assert upload in spans.ancestors(store), "the worker continues the command's trace"
    assert store in spans.ancestors(announced), "the fact is announced under the store span"
    assert announced.parent is not None
    project_chain = spans.ancestors(project)
    assert store in project_chain, "the projector continues the fact's trace"
    assert upload in project_chain
    for read in reads:
        assert read.kind is SpanKind.SERVER
        chain = spans.ancestors(read)
        assert [s.name for s in chain] == ["artstore.upload.wait", "artstore.upload"]
        assert chain[-1] is upload
