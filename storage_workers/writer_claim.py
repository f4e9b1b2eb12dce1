"""One writer per element, enforced (SPEC §3): a lock on a local element, a lease on S3.

A local element is locked with ``flock`` on ``.artstore/writer.lock`` for as long as the worker
process lives; the kernel releases it when the process dies, however it dies.

S3 has no locks. An element in S3 holds a lease object, ``.artstore/writer.lease``: who holds
it and until when. It is created with a conditional PUT (``If-None-Match: *``) and renewed
with ``If-Match: <its ETag>``, so of two workers racing for it exactly one wins, and a writer
whose lease was taken over (it stalled past the expiry) can't overwrite its successor's lease:
its renewal fails and it stops. A lease left by a crashed worker is taken over once it expires,
or at once by a worker on the same host when the holder's process no longer runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import urllib3

from storage_workers.backends import BackendError, LocalStorage, S3Storage, StorageBackend

LOCK_KEY = ".artstore/writer.lock"
LEASE_KEY = ".artstore/writer.lease"


class ElementHasAWriter(Exception):
    """Another worker already writes this element."""


class LeaseLost(Exception):
    """Another worker took this worker's lease over: it must stop writing."""


@dataclass(frozen=True)
class Holder:
    """Who holds an element."""

    worker: str
    host: str
    pid: int
    since: str
    expires_at: str | None = None

    @classmethod
    def me(cls, now: datetime, ttl: timedelta | None = None) -> Holder:
        host = socket.gethostname()
        return cls(
            worker=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            host=host,
            pid=os.getpid(),
            since=now.isoformat(),
            expires_at=None if ttl is None else (now + ttl).isoformat(),
        )

    def encode(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Holder | None:
        try:
            return cls(**json.loads(raw))
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        return f"worker {self.worker} (pid {self.pid} on {self.host}, since {self.since})"


class WriterClaim(Protocol):
    """This worker's claim on its element, held until released."""

    lapses: bool
    """Whether the claim runs out unless renewed (an S3 lease; a local lock does not)."""

    def renew(self) -> None:
        """Keep the claim alive; raises :class:`LeaseLost` when it was taken over."""
        ...

    def release(self) -> None:
        """Give the claim up."""
        ...


def claim_element(
    backend: StorageBackend, element_id: str, *, lease_ttl: timedelta, now: datetime | None = None
) -> WriterClaim:
    """Become the element's only writer, or raise :class:`ElementHasAWriter`."""
    now = now or datetime.now(UTC)
    if isinstance(backend, LocalStorage):
        return LocalLock.acquire(backend, element_id, now)
    if isinstance(backend, S3Storage):
        return S3Lease.acquire(backend, element_id, lease_ttl, now)
    raise TypeError(f"no writer claim for {type(backend).__name__}")


class LocalLock:
    """``flock`` on the element's lock file, held by an open descriptor."""

    lapses = False

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, backend: LocalStorage, element_id: str, now: datetime) -> LocalLock:
        path = backend.path(LOCK_KEY)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.decode(Path(path).read_bytes())
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise ElementHasAWriter(
                f"element {element_id} at {backend.root} already has a writer: {who}. "
                "One worker per element: stop that one first, or start this one for another "
                "element"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, Holder.me(now).encode(), 0)
        return cls(fd)

    def renew(self) -> None:
        """A lock needs no renewal: it lasts as long as the process."""

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class S3Lease:
    """A lease object renewed by conditional PUTs."""

    lapses = True

    def __init__(
        self, backend: S3Storage, element_id: str, holder: Holder, etag: str, ttl: timedelta
    ) -> None:
        self.backend = backend
        self.element_id = element_id
        self.holder = holder
        self.etag = etag
        self.ttl = ttl
        self._http = _lease_http()

    @classmethod
    def acquire(cls, backend: S3Storage, element_id: str, ttl: timedelta, now: datetime) -> S3Lease:
        me = Holder.me(now, ttl)
        http = _lease_http()
        current = _read_lease(backend)
        if current is None:
            etag = _conditional_put(http, backend, me.encode(), {"If-None-Match": "*"})
        else:
            holder, held_etag = current
            if holder is not None and not _stale(holder, now):
                raise ElementHasAWriter(
                    f"element {element_id} in s3://{backend.bucket}/{backend.prefix} already "
                    f"has a writer: {holder.describe()}, lease valid until {holder.expires_at}. "
                    "One worker per element: stop that one first (its lease then lapses), or "
                    "start this one for another element"
                )
            etag = _conditional_put(http, backend, me.encode(), {"If-Match": held_etag})
        if etag is None:
            raise ElementHasAWriter(
                f"element {element_id}: another worker claimed the lease at the same moment"
            )
        return cls(backend, element_id, me, etag, ttl)

    def renew(self) -> None:
        now = datetime.now(UTC)
        renewed = Holder(
            self.holder.worker,
            self.holder.host,
            self.holder.pid,
            self.holder.since,
            (now + self.ttl).isoformat(),
        )
        etag = _conditional_put(self._http, self.backend, renewed.encode(), {"If-Match": self.etag})
        if etag is None:
            # Our last renewal may have landed with its answer lost: then the lease is still
            # ours, under the ETag that renewal made.
            current = _read_lease(self.backend)
            if current is not None and current[0] is not None and _same_holder(current[0], renewed):
                self.holder, self.etag = current[0], current[1]
                return
            raise LeaseLost(
                f"element {self.element_id}: the writer lease was taken over by another worker "
                "(this one stalled past its expiry); this worker stops writing"
            )
        self.holder, self.etag = renewed, etag

    def release(self) -> None:
        """Let the lease lapse now (only if it is still ours)."""
        expired = Holder(
            self.holder.worker,
            self.holder.host,
            self.holder.pid,
            self.holder.since,
            datetime(1970, 1, 1, tzinfo=UTC).isoformat(),
        )
        with contextlib.suppress(Exception):
            _conditional_put(self._http, self.backend, expired.encode(), {"If-Match": self.etag})


def _lease_http() -> urllib3.PoolManager:
    """Short timeouts and no retries: a renewal must not outlast a heartbeat, and a retried
    PUT whose first try landed would be refused as if another worker held the lease."""
    return urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=5), retries=False)


def _same_holder(a: Holder, b: Holder) -> bool:
    return (a.worker, a.host, a.pid, a.since) == (b.worker, b.host, b.pid, b.since)


def _stale(holder: Holder, now: datetime) -> bool:
    if holder.expires_at is None or datetime.fromisoformat(holder.expires_at) <= now:
        return True
    return holder.host == socket.gethostname() and not _process_runs(holder.pid)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lease(backend: S3Storage) -> tuple[Holder | None, str] | None:
    name = backend.object_name(LEASE_KEY)
    try:
        stat = backend.client.stat_object(backend.bucket, name)
    except Exception as exc:
        if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
            return None
        raise BackendError(f"reading the writer lease failed: {exc}") from exc
    raw = backend.read_bytes(LEASE_KEY)
    return Holder.decode(raw), f'"{(stat.etag or "").strip(chr(34))}"'


def _conditional_put(
    http: urllib3.PoolManager, backend: S3Storage, body: bytes, condition: dict[str, str]
) -> str | None:
    """PUT the lease if ``condition`` holds: its new ETag, or None when it did not hold."""
    url = backend.client.get_presigned_url(
        "PUT", backend.bucket, backend.object_name(LEASE_KEY), expires=timedelta(minutes=5)
    )
    try:
        response = http.request("PUT", url, body=body, headers=condition)
    except urllib3.exceptions.HTTPError as exc:
        # Never the URL: it is presigned, its query string a credential for the lease.
        raise BackendError(
            f"writing the writer lease failed: {type(exc).__name__} talking to "
            f"{backend.backend.endpoint}"
        ) from None
    if response.status == 412:
        return None
    if response.status // 100 != 2:
        raise BackendError(f"writing the writer lease failed: HTTP {response.status}")
    return str(response.headers.get("ETag", ""))
