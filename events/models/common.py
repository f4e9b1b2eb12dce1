"""Value types shared by commands and facts."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A lowercase hexadecimal SHA-256 digest."""

ElementId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
"""A storage element id such as ``se-01``: lowercase letters, digits and dashes."""

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]

JsonScalar = str | int | float | bool | None
CustomAttributes = dict[
    Annotated[str, StringConstraints(min_length=1, max_length=64)],
    JsonScalar | list[JsonScalar],
]
"""Custom attributes: flat keys with scalar (or list-of-scalar) values, validated per element."""

FreeForm = dict[str, Any]


def in_utc(value: datetime) -> datetime:
    """``value`` (with a zone) in UTC; ``ValueError`` naming it when that is outside the
    years 1-9999 (e.g. 0001-01-01T00:00:00+14:00), which no database or reader can hold."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value.isoformat()} is outside the years 1-9999 once converted to UTC"
        ) from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(in_utc)]
"""A date and time with a zone, given by a client, that exists in UTC too (read as UTC):
PostgreSQL and every reader convert dates to UTC, and one beyond year 9999 there (e.g.
9999-12-31T23:59:59-23:59) could be stored but neither indexed nor read back."""


class Mode(StrEnum):
    """The mode of a storage element (SPEC §3)."""

    EDIT = "edit"
    RW = "rw"
    RO = "ro"
    AR = "ar"


class RetentionPolicy(StrEnum):
    """Temporary files go to edit elements and expire; permanent ones go to rw elements."""

    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class Strict(BaseModel):
    """Base of every event payload: unknown fields are an error, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class S3StagedObject(Strict):
    """Claim check: the bytes wait in an S3 object."""

    kind: Literal["s3"] = "s3"
    bucket: Annotated[str, StringConstraints(min_length=3, max_length=63)]
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class FileStagedObject(Strict):
    """Claim check: the bytes wait in a file, relative to the shared staging directory."""

    kind: Literal["file"] = "file"
    path: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


StagedObject = Annotated[S3StagedObject | FileStagedObject, Field(discriminator="kind")]

STAGING_PREFIX = "staging/"
"""Default key prefix of the S3 staging area (the staging directory has none)."""


def staged_key(client_id: str, file_id: UUID, at: datetime) -> str:
    """Where ``client_id`` stages the bytes of ``file_id``, below the staging prefix or
    directory. The first segment is the caller's namespace: workers honour a claim check only
    inside the namespace of the token that sent it (SPEC §3, claim checks)."""
    return f"{client_id}/{at:%Y/%m/%d}/{file_id}"


class LocalBackend(Strict):
    """An element stored in a local directory tree."""

    kind: Literal["local"] = "local"
    root: str


class S3Backend(Strict):
    """An element stored under a prefix of an S3 bucket."""

    kind: Literal["s3"] = "s3"
    endpoint: str
    bucket: str
    prefix: str = ""
    secure: bool = False
    region: str = "us-east-1"


ElementBackend = Annotated[LocalBackend | S3Backend, Field(discriminator="kind")]
