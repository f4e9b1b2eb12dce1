"""A published upload, waited on through the facade; and the fields of an upload command."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Tracer
from pydantic import ValidationError

from events import FileStagedObject, UploadRequested
from events.uploads import OUTCOME_FAILED, UploadState
from producers.errors import InvalidUpload, NotFound, Rejected, Timeout
from producers.models import StoredFile, UploadRequest


class UploadFacade(Protocol):
    """What an :class:`UploadHandle` asks (an :class:`~producers.ArtStoreClient`)."""

    async def upload_status(self, file_id: UUID | str) -> dict[str, Any]: ...

    async def get_metadata(self, file_id: UUID | str) -> dict[str, Any]: ...

    def tracer(self) -> Tracer: ...


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
        "version_of": request.version_of,
        "retain_until": request.retain_until,
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
    if request.retain_until is not None and request.retain_until <= datetime.now(UTC):
        # Stored, it would be deleted at the next expiry sweep (the facade refuses it too).
        raise InvalidUpload(
            f"retain_until: must be in the future (got {request.retain_until.isoformat()})",
            field="retain_until",
        )
    return fields


class UploadHandle:
    """A published upload; :meth:`wait` polls the facade until it is stored or rejected.

    Its calls continue the upload's trace (when the upload was traced): the facade's spans for
    them join the spans of its publish, store and projection."""

    def __init__(
        self,
        client: UploadFacade,
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
                if last == UploadState.STORED:
                    return StoredFile.from_sidecar(await self._client.get_metadata(self.file_id))
                if last == UploadState.DELETED:
                    raise NotFound(
                        f"upload {self.file_id} ({self.filename}) was stored, then deleted at "
                        f"{row.get('deleted_at')} by {row.get('deleted_by')}",
                        reason="gone",
                    )
                if last in OUTCOME_FAILED:
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
