"""Where producers leave the bytes an upload command points to (the claim check).

Every claim check is confined to its caller's namespace (:mod:`storage_workers.claim_checks`) before
anything is read or removed; local staged files are reached without following links
(:mod:`storage_workers.staged_files`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from events import FileStagedObject, S3Backend, S3StagedObject, StagedObject
from storage_workers.backends import (
    BackendError,
    LocalStorage,
    ObjectMissing,
    S3Storage,
    WrittenObject,
)
from storage_workers.backends.base import FileSource
from storage_workers.claim_checks import (
    ConfinedClaim,
    InvalidClaimCheck,
    StagingArea,
    confine,
    reconfine,
    staging_namespace,
)
from storage_workers.staged_files import StagedFileMissing, open_staged, remove_staged

log = logging.getLogger(__name__)


class StagedObjectMissing(Exception):
    """The command's staged bytes are not there (never staged, or already cleaned up)."""


class StagedObjectTooLarge(Exception):
    """The staged bytes are more than the command declared: reading stops there, so a command
    declaring a small file can't make the element write a large one before it is refused."""


def _at_most(chunks: Iterable[bytes], declared: int, name: str) -> Iterator[bytes]:
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if seen > declared:
            raise StagedObjectTooLarge(
                f"staged object {name} has more than the {declared} bytes the command declared"
            )
        yield chunk


class StagedFile(FileSource):
    """A confined staged file on local disk (a local element copies it with the kernel).

    Every :meth:`open` walks the path again without following links: it raises
    :class:`InvalidClaimCheck` if a link was swapped in, :class:`StagedObjectMissing` if the
    file is gone.
    """

    def __init__(self, root: Path, relative: str, declared: int | None = None) -> None:
        super().__init__(root / relative)
        self.root = root
        self.relative = relative
        self.declared = declared
        """The size the command declared: a larger file is refused before it is copied."""

    def open(self) -> BinaryIO:
        try:
            fd = open_staged(self.root, self.relative)
        except StagedFileMissing as exc:
            raise StagedObjectMissing(str(exc)) from None
        if self.declared is not None and (size := os.fstat(fd).st_size) > self.declared:
            os.close(fd)
            raise StagedObjectTooLarge(
                f"staged file {self.relative} has {size} bytes, the command declared "
                f"{self.declared}"
            )
        return os.fdopen(fd, "rb")


class Staging:
    """Reads and removes the staged objects of confined claim checks: files under a staging
    directory, or objects under the staging prefix of the staging bucket."""

    def __init__(
        self,
        *,
        directory: Path | None,
        s3_bucket: str | None = None,
        s3_prefix: str = "staging/",
        s3_endpoint: str = "",
        s3_access_key: str = "",
        s3_secret_key: str = "",
        s3_secure: bool = False,
        s3_region: str = "us-east-1",
    ) -> None:
        self._directory = directory
        self.area = StagingArea(
            s3_bucket=s3_bucket if s3_endpoint else None,
            s3_prefix=s3_prefix,
            local=directory is not None,
        )
        self._s3_settings = (s3_endpoint, s3_access_key, s3_secret_key, s3_secure, s3_region)
        self._bucket: S3Storage | None = None

    def _s3(self) -> S3Storage:
        if self._bucket is None:
            endpoint, access, secret, secure, region = self._s3_settings
            assert self.area.s3_bucket is not None  # confine() refuses S3 claims otherwise
            self._bucket = S3Storage(
                S3Backend(
                    endpoint=endpoint, bucket=self.area.s3_bucket, secure=secure, region=region
                ),
                access_key=access,
                secret_key=secret,
            )
        return self._bucket

    def probe(self) -> None:
        """Return when the S3 staging area answers (whether or not anyone stages there yet);
        raise :class:`BackendError` when it is away. A staging directory needs no probe: a
        missing staged file is the command's own failure."""
        if self.area.s3_bucket is not None:
            self._s3().probe(bucket_required=False)

    def confine(self, staged: StagedObject, owner: str) -> ConfinedClaim:
        """``staged`` confined to ``owner``'s namespace; raises :class:`InvalidClaimCheck`."""
        return confine(staged, owner, self.area)

    def open(self, claim: ConfinedClaim, declared: int | None = None) -> Iterable[bytes]:
        """The staged bytes as a stream; raises :class:`StagedObjectMissing`.

        A staged file is returned as a :class:`StagedFile`, which a local element copies with
        the kernel; opening it raises :class:`InvalidClaimCheck` for a link or anything but a
        regular file, and :class:`StagedObjectMissing` if it is gone by then. With
        ``declared`` (the size the command declared), more bytes than that raise
        :class:`StagedObjectTooLarge` as soon as they are seen: when a staged file is opened,
        or when a staged object's stream passes it.
        """
        if isinstance(claim.staged, FileStagedObject):
            assert self._directory is not None  # confine() refuses file claims otherwise
            return StagedFile(self._directory, claim.key, declared)
        try:
            chunks = self._s3().read_range(claim.key)
            return chunks if declared is None else _at_most(chunks, declared, claim.key)
        except ObjectMissing:
            raise StagedObjectMissing(
                f"staged object {describe(claim.staged)} does not exist"
            ) from None

    def stage(
        self, owner: str, name: str, chunks: Iterable[bytes]
    ) -> tuple[ConfinedClaim, WrittenObject]:
        """Stage bytes this worker produced itself (a restore's verified copy) under
        ``owner``'s namespace, hashed as they are written and durable before they have their
        name; in the S3 staging area when there is one, else in the staging directory."""
        namespace = staging_namespace(owner)
        staged: StagedObject
        if self.area.s3_bucket is not None:
            key = f"{self.area.s3_prefix}{namespace}/{name}"
            written = self._s3().write_pending(key, chunks)
            staged = S3StagedObject(bucket=self.area.s3_bucket, key=key)
        else:
            assert self._directory is not None
            local = LocalStorage(self._directory)
            key = f"{namespace}/{name}"
            written = local.write_pending(key, chunks)
            local.publish_pending(written)
            local.sync_dirs([key])
            staged = FileStagedObject(path=key)
        return ConfinedClaim(owner=owner, staged=staged), written

    def remove(self, claim: ConfinedClaim) -> None:
        """Remove the staged bytes of a confined claim check whose content is stored and
        announced (nothing else is ever removed)."""
        try:
            if isinstance(claim.staged, FileStagedObject):
                assert self._directory is not None
                remove_staged(self._directory, claim.key)
            else:
                self._s3().delete(claim.key)
        except InvalidClaimCheck as exc:
            log.warning("staged bytes left in place", extra={"reason": str(exc)})
        except (BackendError, OSError) as exc:
            log.warning("staged bytes not removed", extra={"reason": str(exc)})

    def remove_all(self, claim_checks: Sequence[str]) -> None:
        """Remove several staged objects given as journalled claim checks (JSON of a
        :class:`ConfinedClaim`), each confined again first; anything else stays."""
        for claim_check in claim_checks:
            try:
                claim = reconfine(claim_check, self.area)
            except InvalidClaimCheck as exc:
                log.warning("staged bytes left in place", extra={"reason": str(exc)})
                continue
            self.remove(claim)


def describe(staged: StagedObject) -> str:
    """A human-readable name of a staged object."""
    if isinstance(staged, FileStagedObject):
        return f"file:{staged.path}"
    return f"s3://{staged.bucket}/{staged.key}"
