"""A storage element under a prefix of an S3 bucket (the ``minio`` client).

S3 has no rename and no directories: a PUT is atomic per object, so a data object is written
under its final key and the sidecar, written last, is what makes a file exist. A data object
without its sidecar is an unfinished create that recovery removes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, Literal, cast

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

import events
from storage_workers.backends.base import (
    CHUNK_SIZE,
    WHOLE,
    BackendError,
    ByteRange,
    HashingReader,
    ObjectDigest,
    ObjectInfo,
    ObjectMissing,
    ServiceFault,
    WrittenObject,
    check_key,
    digest_of,
)

PART_SIZE = 16 * 1024 * 1024
_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_TRY_AGAIN = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
"""Error codes with which S3 says the request failed on its side and may be sent again."""


class _ChunkStream(io.RawIOBase):
    """A read()-able view of an iterator of chunks, for a streaming multipart PUT."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class S3Storage:
    """:class:`StorageBackend` over ``bucket``/``prefix``."""

    def __init__(self, backend: events.S3Backend, *, access_key: str, secret_key: str) -> None:
        self.backend = backend
        self.bucket = backend.bucket
        self.prefix = backend.prefix.strip("/")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            retries=urllib3.Retry(total=2, backoff_factor=0.2),
            maxsize=16,
        )
        self.client = Minio(
            backend.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=backend.secure,
            region=backend.region,
            http_client=http,
        )
        self._keys = (access_key, secret_key)
        self._probe_client: Minio | None = None

    def describe(self) -> events.ElementBackend:
        return self.backend

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def object_name(self, key: str) -> str:
        """The bucket's name for ``key`` (under the element's prefix)."""
        return self._name(key)

    def _key(self, name: str) -> str:
        return name[len(self.prefix) + 1 :] if self.prefix else name

    def write_pending(
        self, key: str, chunks: Iterable[bytes], *, durable: bool = True
    ) -> WrittenObject:
        reader = HashingReader(chunks)
        with _errors(key):
            self.client.put_object(
                self.bucket,
                self._name(key),
                cast(BinaryIO, _ChunkStream(reader)),
                -1,
                part_size=PART_SIZE,
            )
        return WrittenObject(key, reader.size, reader.sha256, key)

    def make_durable(self, written: Sequence[WrittenObject]) -> None:
        """Nothing to do: a completed PUT is durable."""

    def publish_pending(self, written: WrittenObject) -> None:
        """Nothing to do: the object is already under its key; its sidecar makes it a file."""

    def discard_pending(self, written: WrittenObject) -> None:
        self.delete(written.key)

    def write_atomic(self, key: str, data: bytes) -> None:
        with _errors(key):
            self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data))

    def sync_dirs(self, keys: Iterable[str]) -> None:
        """S3 has no directory entries: a completed PUT or DELETE is already durable."""

    def read_bytes(self, key: str) -> bytes:
        with _errors(key):
            response = self.client.get_object(self.bucket, self._name(key))
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def read_range(self, key: str, byte_range: ByteRange = WHOLE) -> Iterator[bytes]:
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(key)
        offset, length = byte_range.resolve(info.size)
        if length == 0:
            return iter(())
        with _errors(key):
            response = self.client.get_object(
                self.bucket, self._name(key), offset=offset, length=length
            )
        return _stream(response)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with _errors(key):
                result = self.client.stat_object(self.bucket, self._name(key))
        except ObjectMissing:
            return None
        return ObjectInfo(key, int(result.size or 0))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        start = "/".join(p for p in (self.prefix, prefix.strip("/")) if p)
        with _errors(prefix or "/"):
            for item in self.client.list_objects(
                self.bucket, prefix=f"{start}/" if start else None, recursive=True
            ):
                if item.object_name and not item.is_dir:
                    yield ObjectInfo(self._key(item.object_name), int(item.size or 0))

    def digest(self, key: str) -> ObjectDigest:
        return digest_of(self.read_range(key))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        return (info.key for info in self.list(prefix))

    def delete(self, key: str) -> None:
        with _errors(key):
            self.client.remove_object(self.bucket, self._name(key))

    def free_bytes(self) -> int | None:
        return None

    def probe(self, *, bucket_required: bool = True) -> None:
        if self._probe_client is None:
            # Short timeouts and no retries: a probe answers within seconds, whatever S3 does.
            self._probe_client = Minio(
                self.backend.endpoint,
                access_key=self._keys[0],
                secret_key=self._keys[1],
                secure=self.backend.secure,
                region=self.backend.region,
                http_client=urllib3.PoolManager(
                    timeout=urllib3.Timeout(connect=2, read=5), retries=False
                ),
            )
        with _errors("/"):
            found = self._probe_client.bucket_exists(self.bucket)
        if bucket_required and not found:
            raise BackendError(f"bucket {self.bucket} does not exist")


def _stream(response: Any) -> Iterator[bytes]:
    try:
        yield from response.stream(CHUNK_SIZE)
    finally:
        response.close()
        response.release_conn()


def _server_side(exc: MinioException) -> bool:
    """Whether S3 failed the request on its side. The client reports an answer it cannot read
    as an S3 error as ``ServerError`` (any answer to a HEAD request, such as a stat, carries no
    error document) or ``InvalidResponseError`` (a body that is not XML, as a proxy in front of
    S3 answers while it is away): those are judged by their HTTP status alone."""
    if isinstance(exc, S3Error):
        status = getattr(exc.response, "status", None)
        return exc.code in _TRY_AGAIN or (isinstance(status, int) and status >= 500)
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, InvalidResponseError):
        status = getattr(exc, "_code", None)  # kept only there
        return isinstance(status, int) and status >= 500
    return False


class _errors:
    """Translate client errors: missing keys to ``ObjectMissing``, failures on S3's side or
    without an answer to ``ServiceFault``, the rest to ``BackendError``."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        if exc is None or isinstance(exc, BackendError):
            return False
        if isinstance(exc, S3Error) and exc.code in _MISSING:
            raise ObjectMissing(self.key) from exc
        failed = f"S3 request for {self.key} failed: {str(exc)[:500]}"
        if isinstance(exc, MinioException):
            raise (ServiceFault if _server_side(exc) else BackendError)(failed) from exc
        if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
            raise ServiceFault(failed) from exc
        return False
