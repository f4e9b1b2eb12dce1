"""Service accounts over the auth service's admin API (the caller needs ``accounts:admin``)."""

from __future__ import annotations

import uuid
from typing import Any

from events import Role
from producers.errors import BadRequest, NotFound
from producers.http import AuthorizedHttp

PATH = "/api/v1/accounts"


def account_role(value: Role | str) -> Role:
    """``value`` as a :class:`~events.Role`; :class:`BadRequest` listing the roles otherwise."""
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise BadRequest(f"role must be one of {roles}", reason="invalid_role") from None


class AccountsAdmin:
    """Create, list, rotate, suspend and activate service accounts.

    ``create`` and ``rotate`` return the new ``client_secret``: the only time it is ever shown.
    """

    def __init__(self, http: AuthorizedHttp) -> None:
        self._http = http

    async def create(
        self,
        name: str,
        *,
        role: Role | str = Role.USER,
        description: str = "",
        rate_limit: int | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "role": account_role(role).value,
            "description": description,
        }
        if rate_limit is not None:
            body["rate_limit"] = rate_limit
        created: dict[str, Any] = await self._http.json(
            "POST", PATH, what=f"creation of account {name}", json=body
        )
        return created

    async def list(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        body = await self._http.json("GET", PATH, what="account list", params=params)
        return list(body.get("items", []))

    async def resolve(self, account: str) -> str:
        """The account id of ``account``: an id, a client id or a name."""
        as_id = _account_id(account)
        if as_id is not None:
            return as_id
        offset = 0
        while True:
            page = await self.list(limit=500, offset=offset)
            for item in page:
                if account in (item.get("client_id"), item.get("name")):
                    return str(item["id"])
            if len(page) < 500:
                raise NotFound(f"no account is named {account!r} or has that client id")
            offset += len(page)

    async def rotate(self, account: str, *, secret: str | None = None) -> dict[str, Any]:
        account_id = await self.resolve(account)
        body = {"secret": secret} if secret else None
        rotated: dict[str, Any] = await self._http.json(
            "POST", f"{PATH}/{account_id}/rotate-secret", what="secret rotation", json=body
        )
        return rotated

    async def suspend(self, account: str) -> dict[str, Any]:
        account_id = await self.resolve(account)
        changed: dict[str, Any] = await self._http.json(
            "POST", f"{PATH}/{account_id}/suspend", what="suspension"
        )
        return changed

    async def activate(self, account: str) -> dict[str, Any]:
        account_id = await self.resolve(account)
        changed: dict[str, Any] = await self._http.json(
            "POST", f"{PATH}/{account_id}/activate", what="activation"
        )
        return changed


def _account_id(text: str) -> str | None:
    """``text`` as an account id when it is a UUID; None when it names an account otherwise."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
