"""What the SDK hands back: stored files, upload requests, search pages, download results."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from events import RetentionPolicy
from producers.errors import BadRequest

UploadSource = str | Path | BinaryIO | bytes
"""A path to a file, an open binary stream (read from its current position), or bytes."""


def parse_file_id(value: UUID | str) -> UUID:
    """A file id as a UUID; :class:`BadRequest` naming the value if it is not one."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value.strip())
    except ValueError:
        raise BadRequest(
            f"{value!r} is not a file id (a UUID such as 3f2b9c4e-8a1d-4c6e-9f0a-1b2c3d4e5f60)",
            reason="invalid_file_id",
        ) from None


@dataclass(frozen=True)
class UploadRequest:
    """One file to upload and the metadata its sidecar will carry."""

    source: UploadSource
    filename: str | None = None
    content_type: str | None = None
    retention_policy: RetentionPolicy | str = RetentionPolicy.PERMANENT
    ttl_days: int | None = None
    description: str | None = None
    tags: tuple[str, ...] | list[str] = ()
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    version_of: UUID | None = None
    """Upload as the next version of the document this file belongs to."""
    retain_until: datetime | None = None
    """Permanent files: the end of their retention period."""

    @property
    def policy(self) -> RetentionPolicy:
        """The retention policy as the contract's enum."""
        return RetentionPolicy(self.retention_policy)

    def name(self) -> str:
        """The original filename: given, else the path's or stream's name."""
        if self.filename:
            return self.filename
        if isinstance(self.source, str | Path):
            return Path(self.source).name
        stream_name = getattr(self.source, "name", None)
        if isinstance(stream_name, str) and stream_name:
            return Path(stream_name).name
        raise ValueError("a stream or bytes upload needs filename=")

    def media_type(self) -> str:
        """The content type: given, else guessed from the filename."""
        if self.content_type:
            return self.content_type
        guessed, _ = mimetypes.guess_type(self.name())
        return guessed or "application/octet-stream"

    def open(self) -> tuple[BinaryIO, bool]:
        """The stream to read, and whether the caller must close it."""
        if isinstance(self.source, str | Path):
            return Path(self.source).open("rb"), True
        if isinstance(self.source, bytes):
            return io.BytesIO(self.source), True
        return self.source, False


@dataclass(frozen=True)
class StoredFile:
    """An upload's outcome when it was stored: where, and its sidecar (attr.json) fields."""

    file_id: UUID
    element_id: str
    storage_path: str
    original_filename: str
    file_size: int
    checksum: str
    metadata: dict[str, Any]

    @classmethod
    def from_sidecar(cls, sidecar: dict[str, Any]) -> StoredFile:
        """Build from the facade's ``GET /api/v1/files/{id}`` body."""
        return cls(
            file_id=UUID(str(sidecar["file_id"])),
            element_id=str(sidecar.get("element_id") or ""),
            storage_path=str(sidecar.get("storage_path") or ""),
            original_filename=str(sidecar.get("original_filename") or ""),
            file_size=int(sidecar.get("file_size") or 0),
            checksum=str(sidecar.get("checksum") or ""),
            metadata=sidecar,
        )


@dataclass(frozen=True)
class SearchPage:
    """One page of search results; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class DownloadResult:
    """A verified download: where it went, its size and sha256, and where it resumed from."""

    file_id: UUID
    path: Path | None
    size: int
    sha256: str
    resumed_from: int
    bytes_received: int
