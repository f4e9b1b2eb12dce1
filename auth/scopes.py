"""Scopes, roles and what a client may ask for: pure decisions, no I/O."""

from __future__ import annotations

from enum import StrEnum

from events.roles import Role


class Scope(StrEnum):
    """What a token allows."""

    FILES_WRITE = "files:write"
    FILES_READ = "files:read"
    FILES_DELETE = "files:delete"
    METADATA_WRITE = "metadata:write"
    ELEMENTS_ADMIN = "elements:admin"
    ACCOUNTS_ADMIN = "accounts:admin"
    AUDIT_READ = "audit:read"
    FILES_HOLD = "files:hold"
    """Place and release legal holds on files (docs/lifecycle.md)."""
    DLQ_ADMIN = "dlq:admin"
    """Send dead letters back to their source topics (reading them needs ``audit:read``)."""


ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(s.value for s in Scope),
    Role.USER: frozenset(
        {Scope.FILES_WRITE, Scope.FILES_READ, Scope.FILES_DELETE, Scope.METADATA_WRITE}
    ),
    Role.AUDITOR: frozenset({Scope.AUDIT_READ, Scope.FILES_READ}),
    Role.READONLY: frozenset({Scope.FILES_READ}),
}

KNOWN_SCOPES = frozenset(s.value for s in Scope)


def may_change_file(role: str, client_id: str, uploaded_by: str) -> bool:
    """Ownership (SPEC §3): an ``admin`` may update or delete any file; every other role only
    the files its own account uploaded (``created_by_id`` of the sidecar)."""
    return role == Role.ADMIN or client_id == uploaded_by


def not_owner_detail(file_id: object, client_id: str, uploaded_by: str) -> str:
    """Why :func:`may_change_file` said no, in words a caller can act on."""
    return (
        f"file {file_id} was uploaded by {uploaded_by}, not by {client_id}: an account may "
        "update or delete only the files it uploaded (an admin may change any)"
    )


class ScopeNotAllowed(ValueError):
    """The requested scope is malformed, unknown or beyond what the role grants."""


def parse_scope(value: str | None) -> frozenset[str]:
    """Split an RFC 6749 §3.3 scope string (space-delimited, case-sensitive)."""
    if value is None:
        return frozenset()
    parts = value.split(" ")
    # §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); a double space is an empty token.
    for part in parts:
        if not part or any(c in '"\\' or not (0x21 <= ord(c) <= 0x7E) for c in part):
            raise ScopeNotAllowed(f"malformed scope {value!r}")
    return frozenset(parts)


def format_scope(scopes: frozenset[str] | set[str]) -> str:
    """A stable, space-delimited scope string."""
    return " ".join(sorted(scopes))


def grant_scopes(role: Role, requested: str | None) -> frozenset[str]:
    """The scopes a token for ``role`` gets when the client asks for ``requested``.

    No ``scope`` parameter means every scope the role grants (RFC 6749 §3.3 lets the server
    pick a default); otherwise the request must be a subset of the role's scopes.
    """
    allowed = ROLE_SCOPES[role]
    if requested is None or requested == "":
        return allowed
    wanted = parse_scope(requested)
    unknown = wanted - KNOWN_SCOPES
    if unknown:
        raise ScopeNotAllowed(f"unknown scope: {format_scope(unknown)}")
    beyond = wanted - allowed
    if beyond:
        raise ScopeNotAllowed(f"role {role.value} does not grant: {format_scope(beyond)}")
    return wanted
