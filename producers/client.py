"""``ArtStoreClient``: upload through staging and Kafka, read and command through the facade."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import httpx
from aiokafka.errors import KafkaError
from minio import Minio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    Tracer,
    TracerProvider,
)
from pydantic import ValidationError

from events import (
    BrokerSettings,
    EventPublisher,
    FileStagedObject,
    Mode,
    Outgoing,
    OutgoingRecord,
    RetentionPolicy,
    TopicNames,
    UploadRequested,
    make_broker,
    new_event,
    staged_key,
)
from events.tracing import headers_of, spans_ended
from producers.accounts import AccountsAdmin
from producers.downloads import DownloadProgress, download, local_filename
from producers.errors import (
    BrokerUnavailable,
    ConfigurationError,
    InvalidUpload,
    NotFound,
    Rejected,
    Timeout,
)
from producers.http import AuthorizedHttp
from producers.models import (
    DownloadResult,
    SearchPage,
    StoredFile,
    UploadRequest,
    UploadSource,
    parse_file_id,
)
from producers.settings import ClientSettings, load_client_settings
from producers.staging import DirectoryStaging, S3Staging, Staged, Staging
from producers.tokens import Clock, TokenProvider

SOURCE = "artstore/producer-sdk"
TRACER = "artstore.producers"
UploadProgress = Callable[[UploadRequest, int], None]
"""Called with the request and the number of bytes just staged (from a worker thread)."""


def upload_command_fields(request: UploadRequest) -> dict[str, Any]:
    """The upload command's fields for ``request`` with a new file id; raises
    :class:`InvalidUpload` naming the argument if the command would break the contract, so a
    bad upload is refused before a byte is staged (the size and checksum come later)."""
    fields: dict[str, Any] = {
        "file_id": uuid.uuid4(),
        "original_filename": request.name(),
        "content_type": request.media_type(),
        "retention_policy": request.policy,
        "ttl_days": request.ttl_days,
        "description": request.description,
        "tags": list(request.tags),
        "custom_attributes": dict(request.custom_attributes),
        "metadata": dict(request.metadata),
        "template": request.template,
    }
    try:
        UploadRequested(
            **fields, file_size=0, checksum="0" * 64, staged=FileStagedObject(path="check")
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidUpload(
            f"{field}: {message} (got {first.get('input')!r})" if field else message, field=field
        ) from None
    return fields


class UploadHandle:
    """A published upload; :meth:`wait` polls the facade until it is stored or rejected.

    Its calls continue the upload's trace (when the upload was traced): the facade's spans for
    them join the spans of its publish, store and projection."""

    def __init__(
        self,
        client: ArtStoreClient,
        request: UploadRequest,
        command: UploadRequested,
        trace_context: Context | None = None,
    ):
        self._client = client
        self.request = request
        self.file_id: UUID = command.file_id
        self.filename = command.original_filename
        self.size = command.file_size
        self.checksum = command.checksum
        self.trace_context = trace_context
        """The context of the upload's ``artstore.upload`` span (None: not traced)."""

    async def status(self) -> dict[str, Any]:
        """The upload's status row (``status``: queued, stored, rejected, failed, or deleted
        with ``deleted_at``, ``deleted_by`` and ``deletion_reason``)."""
        if self.trace_context is None or trace.get_current_span().get_span_context().is_valid:
            return await self._client.upload_status(self.file_id)
        token = otel_context.attach(self.trace_context)
        try:
            return await self._client.upload_status(self.file_id)
        finally:
            otel_context.detach(token)

    async def wait(
        self,
        timeout: float = 120.0,  # noqa: ASYNC109 - a deadline across many polls
        *,
        first_poll_s: float = 0.1,
        max_poll_s: float = 2.0,
    ) -> StoredFile:
        """The stored file; raises :class:`Rejected` with the element's reason, or
        :class:`Timeout` if neither happened within ``timeout`` seconds (it may still happen)."""
        if self.trace_context is None:
            return await self._wait(timeout, first_poll_s, max_poll_s)
        with self._client.tracer().start_as_current_span(
            "artstore.upload.wait",
            context=self.trace_context,
            attributes={"artstore.file_id": str(self.file_id)},
        ):
            return await self._wait(timeout, first_poll_s, max_poll_s)

    async def _wait(
        self,
        timeout: float,  # noqa: ASYNC109 - a deadline across many polls
        first_poll_s: float,
        max_poll_s: float,
    ) -> StoredFile:
        deadline = time.monotonic() + timeout
        delay = first_poll_s
        last = "not yet known to the index"
        while True:
            try:
                row = await self.status()
            except NotFound:
                row = None
            if row is not None:
                last = str(row.get("status"))
                if last == "stored":
                    return StoredFile.from_sidecar(await self._client.get_metadata(self.file_id))
                if last == "deleted":
                    raise NotFound(
                        f"upload {self.file_id} ({self.filename}) was stored, then deleted at "
                        f"{row.get('deleted_at')} by {row.get('deleted_by')}",
                        reason="gone",
                    )
                if last in ("rejected", "failed"):
                    raise Rejected(
                        str(row.get("reason") or last),
                        f"upload {self.file_id} ({self.filename}): {row.get('detail') or last}",
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(
                    f"upload {self.file_id} ({self.filename}) is still {last} after {timeout:g} s; "
                    f"check later with `artstore status {self.file_id}`"
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 1.6, max_poll_s)


class ArtStoreClient:
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
    ) -> UploadHandle:
        """Stage one file and publish its upload command; ``await handle.wait()`` for the
        outcome."""
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
        wanted = Mode.EDIT if policy is RetentionPolicy.TEMPORARY else Mode.RW
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

    async def upload_status(self, file_id: UUID | str) -> dict[str, Any]:
        """The facade's status row of an upload; :class:`NotFound` until the index knows it."""
        body: dict[str, Any] = await self.facade.json(
            "GET", f"/api/v1/uploads/{file_id}", what=f"status of upload {file_id}"
        )
        return body

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

    # -- reads ---------------------------------------------------------------------------------

    async def get_metadata(self, file_id: UUID | str) -> dict[str, Any]:
        """A file's sidecar (attr.json fields) as the index holds it."""
        body: dict[str, Any] = await self.facade.json(
            "GET", f"/api/v1/files/{file_id}", what=f"metadata of {file_id}"
        )
        return body

    async def search(
        self,
        q: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        sort: str | None = None,
        attributes: dict[str, str] | None = None,
        **filters: Any,
    ) -> SearchPage:
        """One page of search results. ``filters`` are the facade's (filename, extension, tag,
        username, size_min, size_max, created_from, created_to, element, retention_policy,
        language); list values repeat the parameter; ``attributes`` become ``attr.<key>``."""
        params: list[tuple[str, str]] = []
        given: dict[str, Any] = {"q": q, "limit": limit, "cursor": cursor, "sort": sort, **filters}
        for name, value in given.items():
            if value is None:
                continue
            values = value if isinstance(value, list | tuple | set) else [value]
            params.extend((name, str(v)) for v in values)
        params.extend((f"attr.{k}", str(v)) for k, v in (attributes or {}).items())
        body = await self.facade.json("GET", "/api/v1/search", what="search", params=params)
        return SearchPage(items=list(body.get("items", [])), next_cursor=body.get("next_cursor"))

    async def search_all(
        self, q: str | None = None, **filters: Any
    ) -> AsyncIterator[dict[str, Any]]:
        """Every match, page after page."""
        cursor: str | None = None
        while True:
            page = await self.search(q, cursor=cursor, **filters)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def elements(self) -> list[dict[str, Any]]:
        """Every storage element the index knows: mode, capacity, liveness."""
        body = await self.facade.json("GET", "/api/v1/elements", what="element list")
        return list(body.get("items", []))

    async def audit(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]:
        """A page of the audit trail, newest first (needs ``audit:read``): ``items`` and
        ``next_cursor``. Filters: action (a prefix ending in '.' matches many), actor,
        subject, outcome, since, until (ISO 8601)."""
        params = {k: v for k, v in filters.items() if v is not None}
        params["limit"] = str(limit)
        if cursor:
            params["cursor"] = cursor
        page: dict[str, Any] = await self.facade.json(
            "GET", "/api/v1/audit", what="audit trail", params=params
        )
        return page

    async def download(
        self,
        file_id: UUID | str,
        to: str | Path | BinaryIO | None = None,
        *,
        progress: DownloadProgress | None = None,
        retries: int = 3,
        overwrite: bool = True,
    ) -> DownloadResult:
        """Download to a path (default: the original filename in the current directory; a
        directory means the original filename inside it) or a binary stream; resumes a partial
        download and verifies the sha256 (see :func:`producers.downloads.download`).

        With ``overwrite=False`` an existing target raises :class:`FileExistsError` before a
        byte is fetched."""
        fid = parse_file_id(file_id)
        sidecar = await self.get_metadata(fid)
        target: Path | BinaryIO
        if to is None or isinstance(to, str | Path):
            name = local_filename(sidecar.get("original_filename"), str(fid))
            path = Path(to) if to is not None else Path.cwd() / name
            target = path / name if path.is_dir() else path
            if not overwrite and target.exists():
                raise FileExistsError(f"{target} already exists")
        else:
            target = to
        return await download(
            self.facade,
            fid,
            sidecar,
            target,
            progress=progress,
            retries=retries,
            chunk_bytes=self.settings.chunk_bytes,
        )

    # -- commands (through the facade: it knows which element holds a file) --------------------

    async def update_metadata(
        self,
        file_id: UUID | str,
        *,
        description: str | None = None,
        tags: list[str] | None = None,
        custom_attributes: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> str:
        """Ask the file's element to change its metadata; returns the command id."""
        changes = {
            "description": description,
            "tags": tags,
            "custom_attributes": custom_attributes,
            "metadata": metadata,
            "expected_version": expected_version,
        }
        body = await self.facade.json(
            "PATCH",
            f"/api/v1/files/{file_id}",
            what=f"metadata update of {file_id}",
            json={k: v for k, v in changes.items() if v is not None},
        )
        return str(body["command_id"])

    async def delete(self, file_id: UUID | str, *, reason: str | None = None) -> str:
        """Ask the file's (edit) element to delete it; returns the command id."""
        params = {"reason": reason} if reason else None
        body = await self.facade.json(
            "DELETE", f"/api/v1/files/{file_id}", what=f"deletion of {file_id}", params=params
        )
        return str(body["command_id"])

    async def change_mode(
        self, element_id: str, target_mode: Mode | str, *, reason: str, confirm: bool = False
    ) -> str:
        """Ask an element to move to another mode (scope elements:admin); returns the command
        id. The element announces the change (or its refusal) on the elements topic."""
        body = await self.facade.json(
            "POST",
            f"/api/v1/elements/{element_id}/mode",
            what=f"mode change of {element_id}",
            json={"target_mode": Mode(target_mode).value, "reason": reason, "confirm": confirm},
        )
        return str(body["command_id"])
