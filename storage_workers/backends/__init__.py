"""Storage backends: one small port, a local-directory and an S3 implementation."""

from __future__ import annotations

import events
from storage_workers.backends.base import (
    CHUNK_SIZE,
    BackendError,
    ByteRange,
    FileSource,
    InvalidKey,
    ObjectDigest,
    ObjectInfo,
    ObjectMissing,
    RangeNotSatisfiable,
    ServiceFault,
    StorageBackend,
    WrittenObject,
    is_temporary,
    iter_file,
)
from storage_workers.backends.local import LocalStorage
from storage_workers.backends.s3 import S3Storage


def open_backend(
    backend: events.ElementBackend,
    *,
    s3_access_key: str = "",
    s3_secret_key: str = "",
    create: bool = False,
) -> StorageBackend:
    """The storage behind an element's announced location (``ElementRegistered.backend``).
    Only an element's own worker passes ``create`` (a local directory is made at its first
    start); to anyone else a missing directory is the element away."""
    if isinstance(backend, events.LocalBackend):
        return LocalStorage(backend.root, create=create)
    return S3Storage(backend, access_key=s3_access_key, secret_key=s3_secret_key)


__all__ = [
    "CHUNK_SIZE",
    "BackendError",
    "ByteRange",
    "FileSource",
    "InvalidKey",
    "LocalStorage",
    "ObjectDigest",
    "ObjectInfo",
    "ObjectMissing",
    "RangeNotSatisfiable",
    "S3Storage",
    "ServiceFault",
    "StorageBackend",
    "WrittenObject",
    "is_temporary",
    "iter_file",
    "open_backend",
]
