"""Service accounts' roles: shared by the auth service, the SDK and every service that reads a
token (the scopes each role grants are the auth service's, ``auth.scopes.ROLE_SCOPES``)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A service account's role; each grants a fixed set of scopes."""

    ADMIN = "admin"
    USER = "user"
    AUDITOR = "auditor"
    READONLY = "readonly"
