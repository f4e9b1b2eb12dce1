"""The Kafka broker every service builds, and the publisher that enforces the contract."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.structs import RecordMetadata
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider

from events.codec import OutgoingRecord, encode
from events.envelope import Envelope
from events.topics import FRAMING_ALLOWANCE, TopicNames
from events.tracing import TRACEPARENT, TraceHeaders, context_of, headers_of, spans_ended

if TYPE_CHECKING:
    # FastStream is imported where a broker is made: importing it loads its web-server
    # integrations (uvicorn), which the SDK's import must not (tests/unit/sdk).
    from faststream.kafka import KafkaBroker

_TRACERS: weakref.WeakKeyDictionary[KafkaBroker, Tracer] = weakref.WeakKeyDictionary()
"""The tracer of each broker built with a tracer provider (see :func:`make_broker`)."""


@dataclass(frozen=True)
class BrokerSettings:
    """What every service's broker shares. Built from ``base.settings.Settings``."""

    bootstrap_servers: str
    topic_prefix: str = "artstore"
    max_message_bytes: int = 1024 * 1024
    graceful_timeout_s: float = 15.0
    client_id: str = "artstore"
    idempotent: bool = False
    """Publish with the idempotent producer (no duplicates from the producer's own retries);
    only where the broker supports it (:func:`events.capabilities.supports_idempotent_producer`)."""
    tracer_provider: TracerProvider | None = None
    """Trace what :class:`EventPublisher` publishes through the broker with this provider;
    None: tracing is off."""


def make_broker(settings: BrokerSettings, *, consumer_only: bool = False) -> KafkaBroker:
    """A broker with manual-commit defaults, ``acks=all`` and a short linger for batching.

    Subscribers inherit ``AckPolicy.MANUAL``: a handler commits only once its side effect is
    durable (SPEC §2). The idempotent producer is used where the broker supports it
    (``settings.idempotent``); handlers are idempotent either way. The broker logs to
    ``artstore.broker``: a handler's exception is logged (at ERROR) rather than swallowed;
    each message's receipt is DEBUG.

    With ``settings.tracer_provider``, what :class:`EventPublisher` sends through the broker
    is traced (see :meth:`EventPublisher.send_records`).
    """
    from faststream.kafka import KafkaBroker
    from faststream.middlewares import AckPolicy

    broker = KafkaBroker(
        settings.bootstrap_servers,
        client_id=settings.client_id,
        consumer_only=consumer_only,
        allow_auto_create_topics=False,
        acks="all",
        enable_idempotence=settings.idempotent,
        linger_ms=5,
        # Room for framing on top of our own size check, so the client never rejects a record
        # we have already accepted, and our check (with its clear error) always fires first.
        max_request_size=settings.max_message_bytes + FRAMING_ALLOWANCE,
        graceful_timeout=settings.graceful_timeout_s,
        ack_policy=AckPolicy.MANUAL,
        logger=logging.getLogger("artstore.broker"),
        log_level=logging.DEBUG,
    )
    if settings.tracer_provider is not None:
        _TRACERS[broker] = settings.tracer_provider.get_tracer("artstore.events")
    return broker


@dataclass(frozen=True)
class Outgoing:
    """An event to publish, with the caller's token for commands."""

    envelope: Envelope[Any]
    token: str | None = None
    actor: str | None = None
    """The verified caller whose command this fact answers (for its audit event); not sent."""
    trace: TraceHeaders | None = None
    """The span this event continues (:mod:`events.tracing`), e.g. the one that handled the
    command a fact answers; sent as the record's ``traceparent``."""


class EventPublisher:
    """Publishes contract events: encodes, checks size, routes to the registered topic.

    ``publish_many`` encodes everything first (so an oversized event fails the whole call before
    anything is sent), then hands every record to the producer without waiting, and awaits the
    acknowledgements together: one round of broker latency for the batch, not one per event.
    """

    def __init__(self, broker: KafkaBroker, topics: TopicNames, *, max_message_bytes: int):
        self._broker = broker
        self._topics = topics
        self._max = max_message_bytes
        self._tracer = _TRACERS.get(broker)

    @property
    def topics(self) -> TopicNames:
        """The topic names this publisher writes to."""
        return self._topics

    def encode(
        self,
        envelope: Envelope[Any],
        token: str | None = None,
        trace: TraceHeaders | None = None,
    ) -> OutgoingRecord:
        """Encode without sending (raises ``EventTooLarge``)."""
        return encode(envelope, self._topics, max_bytes=self._max, token=token, trace=trace)

    async def publish(self, envelope: Envelope[Any], *, token: str | None = None) -> RecordMetadata:
        """Publish one event and wait until the broker has it."""
        (meta,) = await self.publish_many([Outgoing(envelope, token)])
        return meta

    async def publish_many(self, events: Iterable[Outgoing]) -> list[RecordMetadata]:
        """Publish events pipelined; returns when the broker acknowledged all of them."""
        records = [self.encode(item.envelope, item.token, item.trace) for item in events]
        return await self.send_records(records)

    async def send_records(self, records: Sequence[OutgoingRecord]) -> list[RecordMetadata]:
        """Send already-encoded records pipelined (used by outbox relays and the DLQ).

        Traced (the broker was built with a tracer provider), each record that continues a
        trace gets a ``<topic> publish`` span, ended when the broker has acknowledged it: the
        child of the span its ``traceparent`` names, else of the current span. The record then
        carries the publish span's ``traceparent``. A record outside any trace (a heartbeat, a
        relayed audit event) gets no span. Untraced, records go out with the trace headers
        they were encoded with."""
        spans: list[Span] = []
        futures = []
        with spans_ended(spans):
            for record in records:
                headers = record.headers
                if self._tracer is not None:
                    span = _publish_span(self._tracer, record)
                    if span is not None:
                        spans.append(span)
                        headers = {**headers, **(headers_of(span) or {})}
                futures.append(
                    await self._broker.publish(
                        record.value,
                        record.topic,
                        key=record.key,
                        headers=headers,
                        correlation_id=record.headers.get("correlation_id"),
                        no_confirm=True,
                    )
                )
            return list(await asyncio.gather(*futures))


def _publish_span(tracer: Tracer, record: OutgoingRecord) -> Span | None:
    """The span of publishing ``record``; None when it continues no trace."""
    if TRACEPARENT in record.headers:
        parent = context_of(record.headers)
    elif trace.get_current_span().get_span_context().is_valid:
        parent = None  # the current span's
    else:
        return None
    return tracer.start_span(
        f"{record.topic} publish",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation": "publish",
            "messaging.destination.name": record.topic,
            "messaging.kafka.message.key": record.key.decode("utf-8", "replace"),
            "artstore.event_type": record.event_type,
        },
    )
