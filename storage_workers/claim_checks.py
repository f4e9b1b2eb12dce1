"""Claim checks confined to the caller's own staged bytes (SPEC §3, "Claim checks and ownership").

A command names its staged bytes; the worker trusts nothing it names. A claim check is honoured
only when it lies in the caller's namespace of the staging area: on S3, a key in the staging
bucket under ``<prefix><client_id>/``; locally, a path under ``<staging root>/<client_id>/``
(and, when it is opened, a regular file reached without following any link: see
:mod:`storage_workers.staged_files`). Everything else is an :class:`InvalidClaimCheck`, decided
from the command alone, before anything is read, with a detail that says what was expected and
nothing about what the claim check named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from events import FileStagedObject, S3StagedObject, StagedObject
from storage_workers.backends import InvalidKey
from storage_workers.backends.base import check_key

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


class InvalidClaimCheck(Exception):
    """A claim check that names anything but bytes its caller staged: never read, never removed.

    The message says where the caller's staged bytes must be, never what the claim check named.
    """


@dataclass(frozen=True, slots=True)
class StagingArea:
    """Where producers may stage bytes for this worker."""

    s3_bucket: str | None
    """The staging bucket; ``None`` when this worker reads no S3 staging."""
    s3_prefix: str = "staging/"
    """Key prefix of the staging area in the bucket (each caller stages under
    ``<prefix><client_id>/``)."""
    local: bool = True
    """Whether this worker has a local staging directory."""

    def namespace(self, owner: str) -> str:
        """Where ``owner``'s staged bytes must be, for messages."""
        places = []
        if self.s3_bucket is not None:
            places.append(f"s3://{self.s3_bucket}/{self.s3_prefix}{owner}/")
        if self.local:
            places.append(f"<staging directory>/{owner}/")
        return " or ".join(places) or "nowhere (this worker has no staging configured)"


class ConfinedClaim(BaseModel):
    """A claim check confined to its owner's namespace; what the journal keeps to remove it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    staged: StagedObject

    @property
    def key(self) -> str:
        """The S3 key, or the path relative to the staging directory."""
        staged = self.staged
        return staged.path if isinstance(staged, FileStagedObject) else staged.key


def staging_namespace(owner: str) -> str:
    """The path segment of ``owner``'s namespace; raises :class:`InvalidClaimCheck` when a
    client id could not be one (it is part of every staged key)."""
    if not _NAMESPACE.match(owner) or owner in (".", ".."):
        raise InvalidClaimCheck(
            f"client id {owner!r} cannot name a staging namespace; no staged bytes are accepted"
        )
    return owner


def confine(staged: StagedObject, owner: str, area: StagingArea) -> ConfinedClaim:
    """``staged`` confined to ``owner``'s namespace, or :class:`InvalidClaimCheck`.

    Decided from the claim check's text alone (nothing is read): the local checks that need
    the file system (no links, a regular file) happen when the file is opened.
    """
    namespace = staging_namespace(owner)
    refused = InvalidClaimCheck(
        f"the claim check does not name bytes staged by {owner}; staged bytes must be under "
        f"{area.namespace(owner)}. It was not read."
    )
    if isinstance(staged, S3StagedObject):
        if area.s3_bucket is None or staged.bucket != area.s3_bucket:
            raise refused
        own = f"{area.s3_prefix}{namespace}/"
        if not staged.key.startswith(own) or not _safe(staged.key) or staged.key == own:
            raise refused
        return ConfinedClaim(owner=owner, staged=staged)
    if not area.local or not _safe(staged.path):
        raise refused
    head, _, rest = staged.path.partition("/")
    if head != namespace or not rest:
        raise refused
    return ConfinedClaim(owner=owner, staged=staged)


def reconfine(claim_check: str, area: StagingArea) -> ConfinedClaim:
    """A claim check the journal kept (JSON of a :class:`ConfinedClaim`), confined again.

    Raises :class:`InvalidClaimCheck` for anything else, including a bare staged object
    without its owner: bytes whose owner is not known are never removed.
    """
    try:
        claim = ConfinedClaim.model_validate_json(claim_check)
    except ValidationError:
        raise InvalidClaimCheck(
            "the release record names staged bytes without their owner; they are left in place"
        ) from None
    return confine(claim.staged, claim.owner, area)


def _safe(key: str) -> bool:
    try:
        check_key(key)
    except InvalidKey:
        return False
    return True
