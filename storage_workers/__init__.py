"""Storage-element workers: each element's single writer, and read access to elements.

The HTTP facade reads content through :func:`open_backend` and :meth:`StorageBackend.read_range`::

    backend = open_backend(registered.backend, s3_access_key=..., s3_secret_key=...)
    for chunk in backend.read_range(storage_path, ByteRange(0, 1023)):
        ...
"""

from events.modes import ElementModeError, Operation, allows, require
from storage_workers.backends import (
    BackendError,
    ByteRange,
    ObjectInfo,
    ObjectMissing,
    RangeNotSatisfiable,
    StorageBackend,
    open_backend,
)
from storage_workers.sidecar import Sidecar, decode_sidecar

__all__ = [
    "BackendError",
    "ByteRange",
    "ElementModeError",
    "ObjectInfo",
    "ObjectMissing",
    "Operation",
    "RangeNotSatisfiable",
    "Sidecar",
    "StorageBackend",
    "allows",
    "decode_sidecar",
    "open_backend",
    "require",
]
