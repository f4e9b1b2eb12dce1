"""Roles grant scopes; clients may only narrow what their role grants."""

from __future__ import annotations

import pytest

from auth.scopes import ROLE_SCOPES, ScopeNotAllowed, grant_scopes, parse_scope
from events import Role


def test_no_scope_parameter_grants_the_whole_role() -> None:
    assert grant_scopes(Role.USER, None) == ROLE_SCOPES[Role.USER]
    assert grant_scopes(Role.ADMIN, "") == ROLE_SCOPES[Role.ADMIN]


def test_a_client_can_down_scope() -> None:
    assert grant_scopes(Role.USER, "files:read") == {"files:read"}
    assert grant_scopes(Role.ADMIN, "accounts:admin files:read") == {"accounts:admin", "files:read"}


def test_scope_beyond_the_role_is_refused() -> None:
    with pytest.raises(ScopeNotAllowed, match="does not grant: accounts:admin"):
        grant_scopes(Role.USER, "files:read accounts:admin")
    with pytest.raises(ScopeNotAllowed, match="does not grant"):
        grant_scopes(Role.READONLY, "files:write")


def test_unknown_and_malformed_scopes_are_refused() -> None:
    with pytest.raises(ScopeNotAllowed, match="unknown scope"):
        grant_scopes(Role.ADMIN, "root")
    for bad in ("files:read  files:write", " files:read", 'a"b', "files:read\tx"):
        with pytest.raises(ScopeNotAllowed, match="malformed"):
            parse_scope(bad)


def test_admin_has_every_scope_and_readonly_only_reads() -> None:
    assert "accounts:admin" in ROLE_SCOPES[Role.ADMIN]
    assert ROLE_SCOPES[Role.READONLY] == {"files:read"}
    assert "accounts:admin" not in ROLE_SCOPES[Role.AUDITOR]
