"""Where producers leave the bytes an upload command points to (the claim check)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from pydantic import TypeAdapter

from events import FileStagedObject, S3Backend, S3StagedObject, StagedObject
from storage_workers.backends import (
    BackendError,
    InvalidKey,
    LocalStorage,
    ObjectMissing,
    S3Storage,
)
from storage_workers.backends.base import FileSource, check_key

_CLAIM_CHECK: TypeAdapter[StagedObject] = TypeAdapter(StagedObject)


class StagedObjectMissing(Exception):
    """The command's staged bytes are not there (never staged, or already cleaned up)."""


class StagedFile(FileSource):
    """A staged file on local disk (a local element copies it with the kernel)."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(path)
        self.name = name

    def open(self) -> BinaryIO:
        try:
            return super().open()
        except FileNotFoundError:
            raise StagedObjectMissing(f"staged object {self.name} does not exist") from None


class Staging:
    """Reads and removes staged objects: files under a staging directory, or S3 objects."""

    def __init__(
        self,
        *,
        directory: Path | None,
        s3_endpoint: str = "",
        s3_access_key: str = "",
        s3_secret_key: str = "",
        s3_secure: bool = False,
        s3_region: str = "us-east-1",
    ) -> None:
        self._local = LocalStorage(directory) if directory is not None else None
        self._s3_settings = (s3_endpoint, s3_access_key, s3_secret_key, s3_secure, s3_region)
        self._buckets: dict[str, S3Storage] = {}

    def _s3(self, bucket: str) -> S3Storage:
        storage = self._buckets.get(bucket)
        if storage is None:
            endpoint, access, secret, secure, region = self._s3_settings
            if not endpoint:
                raise StagedObjectMissing("this worker has no S3 staging configured")
            storage = S3Storage(
                S3Backend(endpoint=endpoint, bucket=bucket, secure=secure, region=region),
                access_key=access,
                secret_key=secret,
            )
            self._buckets[bucket] = storage
        return storage

    def _locate(self, staged: StagedObject) -> tuple[LocalStorage | S3Storage, str]:
        try:
            if isinstance(staged, FileStagedObject):
                if self._local is None:
                    raise StagedObjectMissing("this worker has no staging directory configured")
                return self._local, check_key(staged.path)
            assert isinstance(staged, S3StagedObject)
            return self._s3(staged.bucket), check_key(staged.key)
        except InvalidKey as exc:
            raise StagedObjectMissing(f"staged object path is not acceptable: {exc}") from None

    def size(self, staged: StagedObject) -> int:
        """Size of the staged object; raises :class:`StagedObjectMissing`."""
        storage, key = self._locate(staged)
        info = storage.stat(key)
        if info is None:
            raise StagedObjectMissing(f"staged object {describe(staged)} does not exist")
        return info.size

    def open(self, staged: StagedObject) -> Iterable[bytes]:
        """The staged bytes as a stream; raises :class:`StagedObjectMissing`.

        A staged file is returned as a :class:`StagedFile`, which a local element copies with
        the kernel; it raises :class:`StagedObjectMissing` when it is read if it is gone by then.
        """
        storage, key = self._locate(staged)
        if isinstance(storage, LocalStorage):
            path = storage.path(key)
            if not path.is_file():
                raise StagedObjectMissing(f"staged object {describe(staged)} does not exist")
            return StagedFile(path, describe(staged))
        try:
            return storage.read_range(key)
        except ObjectMissing:
            raise StagedObjectMissing(f"staged object {describe(staged)} does not exist") from None

    def remove(self, staged: StagedObject) -> None:
        """Remove a staged object whose content is stored and announced."""
        try:
            storage, key = self._locate(staged)
            storage.delete(key)
        except (StagedObjectMissing, BackendError):
            return

    def remove_all(self, claim_checks: Sequence[str]) -> None:
        """Remove several staged objects given as claim checks (JSON, see :meth:`remove`)."""
        for claim_check in claim_checks:
            self.remove(_CLAIM_CHECK.validate_json(claim_check))


def describe(staged: StagedObject) -> str:
    """A human-readable name of a staged object."""
    if isinstance(staged, FileStagedObject):
        return f"file:{staged.path}"
    return f"s3://{staged.bucket}/{staged.key}"
