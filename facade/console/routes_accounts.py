"""Accounts: list, create, rotate a secret, suspend, activate (admins only)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from facade.console.access import Operator, checked_form, signed_in
from facade.console.accounts_client import ACTIONS, ROLES, AccountsClient
from facade.console.errors import ConsoleError
from facade.console.runtime import console_of
from facade.console.views import render

router = APIRouter()
SignedIn = Annotated[Operator, Depends(signed_in)]


def _client(request: Request, operator: Operator) -> AccountsClient:
    console = console_of(request)
    return AccountsClient(
        console.auth_url, operator.caller.token, timeout_s=console.settings.auth_timeout_s
    )


def _offset(raw: str | None) -> int:
    if not raw:
        return 0
    if not raw.isascii() or not raw.isdigit() or int(raw) > 10_000_000:
        raise ConsoleError(400, "Bad page", "offset: a whole number")
    return int(raw)


async def _page(
    request: Request, operator: Operator, *, shown: dict[str, Any] | None, status: int = 200
) -> Response:
    operator.require("accounts:admin", "see or manage accounts")
    limit = console_of(request).settings.page_size
    offset = _offset(request.query_params.get("offset"))
    items = await _client(request, operator).page(offset=offset, limit=limit)
    return render(
        request,
        "accounts.html",
        operator,
        status=status,
        section="accounts",
        accounts=items[:limit],
        offset=offset,
        next_offset=offset + limit if len(items) > limit else None,
        roles=ROLES,
        shown=shown,
    )


@router.get("/console/accounts", include_in_schema=False)
async def accounts_page(request: Request, operator: SignedIn) -> Response:
    return await _page(request, operator, shown=None)


@router.post("/console/accounts", include_in_schema=False)
async def create_account(request: Request, operator: SignedIn) -> Response:
    fields = await checked_form(request, operator)
    operator.require("accounts:admin", "create accounts")
    role = fields.get("role", "")
    if role not in ROLES:
        raise ConsoleError(400, "Bad form", f"role: one of {', '.join(ROLES)}")
    name = fields.get("name", "").strip()
    if not name:
        raise ConsoleError(400, "Bad form", "name: give the account a name")
    created = await _client(request, operator).create(
        name=name, role=role, description=fields.get("description", "")[:1000]
    )
    return await _page(request, operator, shown=created, status=201)


@router.post("/console/accounts/{account_id}/{action}", include_in_schema=False)
async def account_action(
    account_id: str, action: str, request: Request, operator: SignedIn
) -> Response:
    await checked_form(request, operator)
    operator.require("accounts:admin", "change accounts")
    if action not in ACTIONS:
        raise ConsoleError(404, "No such action", f"one of {', '.join(ACTIONS)}")
    try:
        identifier = UUID(account_id)
    except ValueError:
        raise ConsoleError(400, "Bad account id", "an account id is a UUID") from None
    changed = await _client(request, operator).act(identifier, action)
    shown = changed if action == "rotate-secret" else None
    return await _page(request, operator, shown=shown)
