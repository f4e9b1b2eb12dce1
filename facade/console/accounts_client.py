"""The auth service's accounts API, called with the operator's own token (scope accounts:admin).

The console holds no account rights of its own: the auth service decides and audits each call.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from facade.console.errors import ConsoleError

ROLES = ("admin", "user", "auditor", "readonly")
ACTIONS = ("rotate-secret", "suspend", "activate")


class AccountsClient:
    """Thin calls; each error becomes a console page with the auth service's reason."""

    def __init__(self, auth_url: str, token: str, *, timeout_s: float) -> None:
        self._auth_url = auth_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout_s = timeout_s

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with httpx.AsyncClient(
                base_url=self._auth_url, timeout=self._timeout_s, headers=self._headers
            ) as client:
                response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ConsoleError(503, "Auth service away", f"could not reach it: {exc}") from None
        if response.status_code >= 400:
            # The auth service audits every account change it refuses (not its own failures).
            raise ConsoleError(
                response.status_code if response.status_code < 500 else 502,
                "Refused by the auth service",
                _reason(response),
                audited_elsewhere=response.status_code < 500,
            )
        return response.json()

    async def page(self, *, offset: int, limit: int) -> list[dict[str, Any]]:
        """One page of accounts, newest first as the auth service lists them."""
        body = await self._call(
            "GET", "/api/v1/accounts", params={"offset": offset, "limit": limit + 1}
        )
        return list(body["items"])

    async def create(self, *, name: str, role: str, description: str) -> dict[str, Any]:
        """A new account with its secret (shown once)."""
        return dict(
            await self._call(
                "POST",
                "/api/v1/accounts",
                json={"name": name, "role": role, "description": description},
            )
        )

    async def act(self, account_id: UUID, action: str) -> dict[str, Any]:
        """Rotate the secret, suspend or activate."""
        return dict(await self._call("POST", f"/api/v1/accounts/{account_id}/{action}"))


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"status {response.status_code}"
    if isinstance(body, dict):
        for key in ("detail", "error_description", "title"):
            value = body.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return str(value[0].get("msg", value[0]))
    return f"status {response.status_code}"
