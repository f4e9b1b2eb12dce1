"""``ArtStoreClient``: upload through staging and Kafka (here), read and command through the
facade (:mod:`producers.facade_calls`); a published upload's handle is in
:mod:`producers.upload_handle`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from aiokafka.errors import KafkaError
from minio import Minio
from opentelemetry import trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    Tracer,
    TracerProvider,
)

from events import (
    BrokerSettings,
    EventPublisher,
    FileStagedObject,
    Outgoing,
    OutgoingRecord,
    RetentionPolicy,
    TopicNames,
    UploadRequested,
    make_broker,
    new_event,
    staged_key,
)
from events.modes import upload_mode
from events.tracing import headers_of, spans_ended
from producers.accounts import AccountsAdmin
from producers.errors import (
    BrokerUnavailable,
    ConfigurationError,
    Rejected,
)
from producers.facade_calls import FacadeCalls
from producers.http import AuthorizedHttp
from producers.models import (
    UploadRequest,
    UploadSource,
    parse_file_id,
)
from producers.settings import ClientSettings, load_client_settings
from producers.staging import DirectoryStaging, S3Staging, Staged, Staging
from producers.tokens import Clock, TokenProvider
from producers.upload_handle import UploadHandle, upload_command_fields

SOURCE = "artstore/producer-sdk"
TRACER = "artstore.producers"
__all__ = ["ArtStoreClient", "UploadHandle", "UploadProgress", "upload_command_fields"]

UploadProgress = Callable[[UploadRequest, int], None]
"""Called with the request and the number of bytes just staged (from a worker thread)."""


class ArtStoreClient(FacadeCalls):
    """The async producer SDK. Use as ``async with ArtStoreClient(settings) as client:``.

    Uploads stage the bytes (S3 bucket or shared directory), then publish ``UploadRequested``
    with the client's token straight to Kafka; everything else goes through the HTTP facade.

    Each upload starts a trace (OpenTelemetry) with ``tracer_provider``, else the application's
    global provider; its command carries ``traceparent``, so the services that handle it
    continue the trace. Without a provider nothing is traced.
    """

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        http: httpx.AsyncClient | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self.settings = settings or load_client_settings()
        s = self.settings
        self._http = http or httpx.AsyncClient(timeout=s.request_timeout_s)
        self._owns_http = http is None
        secret = s.client_secret.get_secret_value() if s.client_secret else None
        self.tokens = TokenProvider(
            self._http,
            f"{s.auth_url.rstrip('/')}/oauth2/token",
            s.client_id,
            secret,
            scope=s.scope,
            refresh_fraction=s.token_refresh_fraction,
            clock=clock,
        )
        self.facade = AuthorizedHttp(self._http, self.tokens, s.facade_url)
        self.auth = AuthorizedHttp(self._http, self.tokens, s.auth_url)
        self.staging: Staging = self._staging()
        self._publisher: EventPublisher | None = None
        self._broker: Any = None
        self._broker_lock = asyncio.Lock()

    def _staging(self) -> Staging:
        s = self.settings
        if s.staging == "directory":
            return DirectoryStaging(s.staging_dir, chunk_bytes=s.chunk_bytes)
        minio = Minio(
            s.s3_endpoint,
            access_key=s.s3_access_key,
            secret_key=s.s3_secret_key.get_secret_value(),
            secure=s.s3_secure,
            region=s.s3_region,
        )
        return S3Staging(
            minio,
            s.s3_bucket,
            s.staging_prefix,
            part_bytes=s.part_bytes,
            chunk_bytes=s.chunk_bytes,
            endpoint=s.s3_endpoint,
        )

    async def __aenter__(self) -> ArtStoreClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Kafka producer and the HTTP connections."""
        await self._drop_broker()
        if self._owns_http:
            await self._http.aclose()

    @property
    def accounts(self) -> AccountsAdmin:
        """Service-account administration on the auth service (needs ``accounts:admin``)."""
        return AccountsAdmin(self.auth)

    @property
    def namespace(self) -> str:
        """This client's staging namespace, its client id: workers honour a claim check only
        under the namespace of the token that sent it."""
        if not self.settings.client_id:
            raise ConfigurationError(
                "no client id: set ARTSTORE_CLIENT_CLIENT_ID (staged bytes go under it)"
            )
        return self.settings.client_id

    async def token(self) -> str:
        """The current access token (cached; refreshed before it expires)."""
        return await self.tokens.token()

    def tracer(self) -> Tracer:
        """The SDK's tracer (a no-op one when the application traces nothing)."""
        return trace.get_tracer(TRACER, tracer_provider=self._tracer_provider)

    def _traced_provider(self) -> TracerProvider | None:
        """The provider spans are recorded with; None when there is none to record them."""
        provider = self._tracer_provider or trace.get_tracer_provider()
        if isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
            return None
        return provider

    # -- uploads ------------------------------------------------------------------------------

    async def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        retention_policy: RetentionPolicy | str = RetentionPolicy.PERMANENT,
        ttl_days: int | None = None,
        description: str | None = None,
        tags: Iterable[str] = (),
        custom_attributes: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        template: str | None = None,
        progress: UploadProgress | None = None,
        version_of: UUID | str | None = None,
        retain_until: datetime | None = None,
    ) -> UploadHandle:
        """Stage one file and publish its upload command; ``await handle.wait()`` for the
        outcome. ``version_of``: store it as the next version of the document that file
        belongs to (refused with :class:`Rejected` ``unknown_document`` or
        ``document_deleted`` before a byte is staged when the index can tell);
        ``retain_until``: a permanent file's retention period (docs/lifecycle.md)."""
        request = UploadRequest(
            source=source,
            filename=filename,
            content_type=content_type,
            retention_policy=retention_policy,
            ttl_days=ttl_days,
            description=description,
            tags=list(tags),
            custom_attributes=custom_attributes or {},
            metadata=metadata or {},
            template=template,
            version_of=None if version_of is None else parse_file_id(version_of),
            retain_until=retain_until,
        )
        (handle,) = await self.upload_many([request], progress=progress)
        return handle

    async def upload_many(
        self,
        requests: Sequence[UploadRequest],
        *,
        progress: UploadProgress | None = None,
        concurrency: int = 4,
        check_placement: bool = True,
    ) -> list[UploadHandle]:
        """Stage every file (``concurrency`` at a time), then publish all their commands
        pipelined: one round trip to the broker for the batch.

        With ``check_placement`` an upload whose class (rw for permanent, edit for temporary)
        has elements but none accepting uploads is refused before any byte is staged, with
        :class:`Rejected` (``element_mode`` or ``element_full``): such an upload would wait on
        its topic until an operator makes an element writable again.
        """
        if not requests:
            return []
        commands = [upload_command_fields(r) for r in requests]
        for document in {r.version_of for r in requests if r.version_of is not None}:
            await self.check_version_of(document)
        if check_placement:
            for policy in {r.policy for r in requests}:
                await self.check_placement(policy)
        tracer = self.tracer()
        spans = [
            tracer.start_span(
                "artstore.upload",
                attributes={
                    "artstore.file_id": str(f["file_id"]),
                    "artstore.filename": f["original_filename"],
                },
            )
            for f in commands
        ]
        with spans_ended(spans):
            return await self._upload(requests, commands, spans, progress, concurrency)

    async def _upload(
        self,
        requests: Sequence[UploadRequest],
        commands: list[dict[str, Any]],
        spans: list[Span],
        progress: UploadProgress | None,
        concurrency: int,
    ) -> list[UploadHandle]:
        token = await self.tokens.token()
        limit = asyncio.Semaphore(max(1, concurrency))

        async def stage(request: UploadRequest, fields: dict[str, Any]) -> Staged:
            async with limit:
                stream, owned = request.open()
                reporter = (lambda n: progress(request, n)) if progress is not None else None
                try:
                    key = staged_key(self.namespace, fields["file_id"], datetime.now(UTC))
                    return await self.staging.stage(key, stream, reporter)
                finally:
                    if owned:
                        stream.close()

        staged = await asyncio.gather(
            *(stage(r, f) for r, f in zip(requests, commands, strict=True))
        )
        built = [
            UploadRequested(**f, file_size=s.size, checksum=s.sha256, staged=s.staged)
            for f, s in zip(commands, staged, strict=True)
        ]
        for span, item in zip(spans, staged, strict=True):
            span.set_attribute("artstore.file_size", item.size)
        try:
            outgoing = [
                Outgoing(new_event(c, source=SOURCE), token, trace=headers_of(span))
                for c, span in zip(built, spans, strict=True)
            ]
            publisher = await self._publisher_started()
            records = [publisher.encode(o.envelope, o.token, o.trace) for o in outgoing]
        except BaseException:
            # Nothing was sent: nobody will ever ask for these bytes.
            for item in staged:
                await self.staging.discard(item.staged)
            raise
        await self._send_commands(publisher, records, [str(c.file_id) for c in built])
        return [
            UploadHandle(
                self,
                r,
                c,
                trace.set_span_in_context(span) if span.get_span_context().is_valid else None,
            )
            for r, c, span in zip(requests, built, spans, strict=True)
        ]

    async def _send_commands(
        self, publisher: EventPublisher, records: list[OutgoingRecord], file_ids: list[str]
    ) -> None:
        """Send upload commands within the publish deadline, or raise BrokerUnavailable.

        Past the deadline some commands may still reach the broker, so their staged bytes are
        kept; the producer is dropped, and the next call connects afresh."""
        deadline = self.settings.publish_timeout_s
        try:
            async with asyncio.timeout(deadline):
                await publisher.send_records(records)
            return
        except TimeoutError:
            why = f"did not acknowledge them within {deadline:g} s"
        except KafkaError as exc:
            why = f"refused them: {exc}"
        await self._drop_broker()
        shown = ", ".join(file_ids[:5]) + (" ..." if len(file_ids) > 5 else "")
        raise BrokerUnavailable(
            f"the broker at {self.settings.kafka_bootstrap} {why}; {len(file_ids)} upload "
            f"command(s) may or may not have been delivered ({shown}). Publishing the same "
            "uploads again is safe; their staged bytes were kept.",
            file_ids=file_ids,
        )

    async def _drop_broker(self) -> None:
        broker, self._broker, self._publisher = self._broker, None, None
        if broker is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.publish_timeout_s):
                    await broker.stop()

    async def check_placement(self, policy: RetentionPolicy | str) -> None:
        """Raise :class:`Rejected` if the policy's element class exists but none of its elements
        accepts uploads (see :meth:`upload_many`). No known elements: nothing to judge."""
        policy = RetentionPolicy(policy)
        wanted = upload_mode(policy)
        elements = await self.elements()
        if not elements:
            return
        same_mode = [e for e in elements if e.get("mode") == wanted.value]
        if any(e.get("accepting_uploads") is not False for e in same_mode):
            return
        listing = ", ".join(f"{e['element_id']} ({e.get('mode')})" for e in elements)
        if same_mode:
            raise Rejected(
                "element_full",
                f"every {wanted.value} element is full; {policy.value} uploads have nowhere to go "
                f"(elements: {listing})",
            )
        raise Rejected(
            "element_mode",
            f"no element is in mode {wanted.value}, so {policy.value} uploads would not be "
            f"stored (elements: {listing})",
        )

    async def _publisher_started(self) -> EventPublisher:
        async with self._broker_lock:
            if self._publisher is None:
                s = self.settings
                broker = make_broker(
                    BrokerSettings(
                        bootstrap_servers=s.kafka_bootstrap,
                        topic_prefix=s.topic_prefix,
                        max_message_bytes=s.max_message_bytes,
                        client_id="artstore-producer",
                        tracer_provider=self._traced_provider(),
                    )
                )
                try:
                    async with asyncio.timeout(s.publish_timeout_s):
                        await broker.start()
                except TimeoutError:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(s.publish_timeout_s):
                            await broker.stop()
                    raise BrokerUnavailable(
                        f"could not connect to the broker at {s.kafka_bootstrap} within "
                        f"{s.publish_timeout_s:g} s (ARTSTORE_CLIENT_PUBLISH_TIMEOUT_S); "
                        "is it running and reachable?",
                        file_ids=[],
                    ) from None
                self._broker = broker
                self._publisher = EventPublisher(
                    broker,
                    TopicNames(s.topic_prefix),
                    max_message_bytes=s.max_message_bytes,
                )
            return self._publisher

    def handle(self, file_id: UUID | str, filename: str = "") -> UploadHandle:
        """A handle to wait on an upload published earlier (e.g. by another process)."""
        command = UploadRequested(
            file_id=parse_file_id(file_id),
            original_filename=filename or str(file_id),
            file_size=0,
            checksum="0" * 64,
            staged=FileStagedObject(path="unknown"),
        )
        return UploadHandle(self, UploadRequest(source=b"", filename=filename), command)
