"""Reads and commands through the HTTP facade: upload status, metadata, search, elements,
audit, downloads, metadata updates, deletes and mode changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from events import Mode
from producers.downloads import DownloadProgress, download, local_filename
from producers.errors import NotFound, Rejected
from producers.http import AuthorizedHttp
from producers.models import DownloadResult, SearchPage, parse_file_id
from producers.settings import ClientSettings


class FacadeCalls:
    """The client's calls to the facade (:class:`~producers.ArtStoreClient` has them all)."""

    facade: AuthorizedHttp
    settings: ClientSettings

    async def upload_status(self, file_id: UUID | str) -> dict[str, Any]:
        """The facade's status row of an upload; :class:`NotFound` until the index knows it."""
        body: dict[str, Any] = await self.facade.json(
            "GET", f"/api/v1/uploads/{file_id}", what=f"status of upload {file_id}"
        )
        return body

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

    async def versions(self, file_id: UUID | str) -> dict[str, Any]:
        """Every version of the document ``file_id`` belongs to, oldest first:
        ``{"document_id", "latest", "versions": [{"file_id", "document_version", ...}]}``
        (deleted versions included, with ``deleted_at``)."""
        body: dict[str, Any] = await self.facade.json(
            "GET", f"/api/v1/files/{file_id}/versions", what=f"versions of {file_id}"
        )
        return body

    async def check_version_of(self, version_of: UUID) -> None:
        """Raise :class:`Rejected` (``unknown_document``, ``document_deleted``) when the index
        shows that ``version_of`` names no stored document, or one whose versions are all
        deleted. The element's worker decides again, ownership included (a document too new
        for the index is refused here: wait for its upload's outcome first)."""
        try:
            body = await self.versions(version_of)
        except NotFound:
            raise Rejected(
                "unknown_document",
                f"version_of: no stored document with file {version_of} that "
                f"{self.settings.client_id} may add a version to",
            ) from None
        # Whose document it is, the element's worker decides (and answers a stranger exactly
        # as it answers an unknown file).
        if body.get("latest") is None:
            raise Rejected(
                "document_deleted",
                f"version_of: document {body.get('document_id')} (of file {version_of}) was "
                "deleted: none of its versions is left",
            )

    async def place_legal_hold(self, file_id: UUID | str, *, reason: str) -> str:
        """Put a file under legal hold (scope files:hold); returns the command id. Nothing
        deletes a held file (a request, its TTL or its retention period) until released."""
        body = await self.facade.json(
            "POST",
            f"/api/v1/files/{file_id}/legal-hold",
            what=f"legal hold of {file_id}",
            json={"reason": reason},
        )
        return str(body["command_id"])

    async def release_legal_hold(self, file_id: UUID | str, *, reason: str) -> str:
        """Release a file's legal hold (scope files:hold); returns the command id."""
        body = await self.facade.json(
            "DELETE",
            f"/api/v1/files/{file_id}/legal-hold",
            what=f"release of the legal hold of {file_id}",
            params={"reason": reason},
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

    async def restore(self, file_id: UUID | str) -> dict[str, Any]:
        """Ask for an archived file's content back (scope files:read): the restore's id and
        status (``queued``; a restore already pending for the file is joined, same id)."""
        body: dict[str, Any] = await self.facade.json(
            "POST", f"/api/v1/files/{file_id}/restore", what=f"restore of {file_id}"
        )
        return body

    async def restore_status(self, restore_id: UUID | str) -> dict[str, Any]:
        """A restore's status: queued, in_progress, restored (until ``expires_at``), expired or
        failed (with ``reason`` and ``detail``)."""
        body: dict[str, Any] = await self.facade.json(
            "GET", f"/api/v1/restores/{restore_id}", what=f"restore {restore_id}"
        )
        return body
