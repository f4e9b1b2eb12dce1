"""Accounts admin API (scope ``accounts:admin``): CRUD, rotate, suspend, activate."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from auth.account_service import AccountService, AccountWithSecret
from auth.accounts import AccountStatus
from auth.errors import InsufficientScope, InvalidToken, TokenError
from auth.scopes import Scope
from auth.verifier import VerifiedToken
from base.openapi import details, merged, oauth_errors
from events import Role

router = APIRouter(
    prefix="/api/v1/accounts",
    tags=["accounts"],
    responses=merged(oauth_errors(401, 403, 503), details(400, 404, 409, 422)),
)
#: Far beyond the ~2,000 accounts the service is sized for, and well inside what PostgreSQL's
#: OFFSET (a bigint) accepts.
MAX_OFFSET = 1_000_000


class BearerRejected(Exception):
    """Carries a verifier error out of the dependency to the app's handler."""

    def __init__(self, error: TokenError) -> None:
        self.error = error


async def require_admin(request: Request) -> VerifiedToken:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    verifier = request.app.state.runtime.verifier
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise_missing()
        verified: VerifiedToken = await verifier.verify(token.strip())
        # Known from here on: a refusal for the missing scope names who was refused.
        request.state.client_id = verified.client_id
        if not verified.has_scopes(Scope.ACCOUNTS_ADMIN.value):
            raise InsufficientScope(
                f"token lacks scope: {Scope.ACCOUNTS_ADMIN.value}",
                missing=frozenset({Scope.ACCOUNTS_ADMIN.value}),
            )
    except TokenError as exc:
        raise BearerRejected(exc) from exc
    return verified


def raise_missing() -> None:
    raise InvalidToken("a bearer token is required", reason="missing")


Admin = Annotated[VerifiedToken, Depends(require_admin)]


def _service(request: Request) -> AccountService:
    service: AccountService = request.app.state.runtime.accounts
    return service


def _now(request: Request) -> Any:
    return request.app.state.runtime.clock()


class AccountCreate(BaseModel):
    name: str
    role: Role = Role.USER
    description: str = Field("", max_length=1000)
    rate_limit: int | None = Field(None, gt=0, le=100_000)


class AccountUpdate(BaseModel):
    description: str | None = Field(None, max_length=1000)
    role: Role | None = None
    rate_limit: int | None = Field(None, gt=0, le=100_000)


class SecretRotation(BaseModel):
    secret: str | None = Field(None, description="Omit to have a strong secret generated.")


def _with_secret(request: Request, created: AccountWithSecret, status: int) -> JSONResponse:
    body = created.account.view(_now(request))
    body["client_secret"] = created.secret
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.post("", status_code=201)
async def create_account(request: Request, body: AccountCreate, admin: Admin) -> JSONResponse:
    created = await _service(request).create(
        name=body.name,
        role=body.role,
        description=body.description,
        rate_limit=body.rate_limit,
        actor=admin.client_id,
    )
    return _with_secret(request, created, 201)


@router.get("")
async def list_accounts(
    request: Request,
    admin: Admin,
    status: AccountStatus | None = None,
    limit: Annotated[int, Query(gt=0, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    found = await _service(request).list(status=status, limit=limit, offset=offset)
    now = _now(request)
    return {"items": [a.view(now) for a in found], "limit": limit, "offset": offset}


@router.get("/{account_id}")
async def get_account(request: Request, account_id: uuid.UUID, admin: Admin) -> dict[str, Any]:
    return (await _service(request).get(account_id)).view(_now(request))


@router.patch("/{account_id}")
async def update_account(
    request: Request, account_id: uuid.UUID, body: AccountUpdate, admin: Admin
) -> dict[str, Any]:
    updated = await _service(request).update(
        account_id,
        actor=admin.client_id,
        description=body.description,
        role=body.role,
        rate_limit=body.rate_limit,
    )
    return updated.view(_now(request))


@router.delete("/{account_id}")
async def delete_account(request: Request, account_id: uuid.UUID, admin: Admin) -> dict[str, Any]:
    deleted = await _service(request).delete(account_id, actor=admin.client_id)
    return deleted.view(_now(request))


@router.post("/{account_id}/rotate-secret")
async def rotate_secret(
    request: Request, account_id: uuid.UUID, admin: Admin, body: SecretRotation | None = None
) -> JSONResponse:
    rotated = await _service(request).rotate_secret(
        account_id, actor=admin.client_id, secret=body.secret if body else None
    )
    return _with_secret(request, rotated, 200)


@router.post("/{account_id}/suspend")
async def suspend(request: Request, account_id: uuid.UUID, admin: Admin) -> dict[str, Any]:
    changed = await _service(request).set_status(
        account_id, AccountStatus.SUSPENDED, actor=admin.client_id
    )
    return changed.view(_now(request))


@router.post("/{account_id}/activate")
async def activate(request: Request, account_id: uuid.UUID, admin: Admin) -> dict[str, Any]:
    changed = await _service(request).set_status(
        account_id, AccountStatus.ACTIVE, actor=admin.client_id
    )
    return changed.view(_now(request))
