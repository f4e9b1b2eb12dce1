"""``ArtStoreSyncClient``: the same calls for code without an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from uuid import UUID

from events import Mode, RetentionPolicy
from producers.client import ArtStoreClient, UploadHandle, UploadProgress
from producers.downloads import DownloadProgress
from producers.models import DownloadResult, SearchPage, StoredFile, UploadRequest, UploadSource
from producers.settings import ClientSettings

T = TypeVar("T")


class SyncUploadHandle:
    """A published upload; :meth:`wait` blocks until it is stored or rejected."""

    def __init__(self, client: ArtStoreSyncClient, handle: UploadHandle) -> None:
        self._client = client
        self.handle = handle
        self.file_id = handle.file_id
        self.filename = handle.filename
        self.size = handle.size
        self.checksum = handle.checksum

    def wait(self, timeout: float = 120.0) -> StoredFile:
        """See :meth:`UploadHandle.wait`."""
        return self._client._run(self.handle.wait(timeout))

    def status(self) -> dict[str, Any]:
        return self._client._run(self.handle.status())


class ArtStoreSyncClient:
    """Blocking wrapper of :class:`ArtStoreClient`, running it on a private event loop.

    Use as ``with ArtStoreSyncClient(settings) as client:``; not from inside a running loop.
    """

    def __init__(self, settings: ClientSettings | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client: ArtStoreClient = self._loop.run_until_complete(self._make(settings, kwargs))

    @staticmethod
    async def _make(settings: ClientSettings | None, kwargs: dict[str, Any]) -> ArtStoreClient:
        return ArtStoreClient(settings, **kwargs)  # the HTTP client binds to this loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def __enter__(self) -> ArtStoreSyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.aclose())
            self._loop.close()

    @property
    def client(self) -> ArtStoreClient:
        """The async client underneath."""
        return self._client

    def token(self) -> str:
        return self._run(self._client.token())

    def upload(
        self,
        source: UploadSource,
        *,
        filename: str | None = None,
        retention_policy: RetentionPolicy | str = RetentionPolicy.PERMANENT,
        ttl_days: int | None = None,
        description: str | None = None,
        tags: Iterable[str] = (),
        custom_attributes: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SyncUploadHandle:
        """See :meth:`ArtStoreClient.upload`."""
        handle = self._run(
            self._client.upload(
                source,
                filename=filename,
                retention_policy=retention_policy,
                ttl_days=ttl_days,
                description=description,
                tags=tags,
                custom_attributes=custom_attributes,
                **kwargs,
            )
        )
        return SyncUploadHandle(self, handle)

    def upload_many(
        self, requests: Sequence[UploadRequest], *, progress: UploadProgress | None = None
    ) -> list[SyncUploadHandle]:
        handles = self._run(self._client.upload_many(requests, progress=progress))
        return [SyncUploadHandle(self, h) for h in handles]

    def upload_status(self, file_id: UUID | str) -> dict[str, Any]:
        return self._run(self._client.upload_status(file_id))

    def get_metadata(self, file_id: UUID | str) -> dict[str, Any]:
        return self._run(self._client.get_metadata(file_id))

    def search(self, q: str | None = None, **filters: Any) -> SearchPage:
        return self._run(self._client.search(q, **filters))

    def elements(self) -> list[dict[str, Any]]:
        return self._run(self._client.elements())

    def download(
        self,
        file_id: UUID | str,
        to: str | Path | BinaryIO | None = None,
        *,
        progress: DownloadProgress | None = None,
    ) -> DownloadResult:
        return self._run(self._client.download(file_id, to, progress=progress))

    def update_metadata(self, file_id: UUID | str, **changes: Any) -> str:
        return self._run(self._client.update_metadata(file_id, **changes))

    def delete(self, file_id: UUID | str, *, reason: str | None = None) -> str:
        return self._run(self._client.delete(file_id, reason=reason))

    def change_mode(
        self, element_id: str, target_mode: Mode | str, *, reason: str, confirm: bool = False
    ) -> str:
        return self._run(
            self._client.change_mode(element_id, target_mode, reason=reason, confirm=confirm)
        )
