"""The few facade and auth calls the demo tour makes, over HTTP with httpx."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx


class RequestFailed(Exception):
    """A call answered with an unexpected status; the message carries the server's reason."""


class FacadeClient:
    """An authenticated client of the facade (token from the auth service)."""

    def __init__(self, facade_url: str, auth_url: str, client_id: str, client_secret: str) -> None:
        self.facade_url = facade_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self._credentials = (client_id, client_secret)
        self._http = httpx.AsyncClient(base_url=self.facade_url, timeout=60.0)
        self._token: str | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the auth service and the facade answer their readiness checks."""
        deadline = time.monotonic() + timeout_s
        for url in (f"{self.auth_url}/health/ready", f"{self.facade_url}/health/ready"):
            while True:
                try:
                    if (await self._http.get(url)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() >= deadline:
                    raise RequestFailed(f"{url} is not ready; is `artstore dev` running?")
                await asyncio.sleep(0.3)

    async def authenticate(self) -> None:
        """Get an access token with the client-credentials grant."""
        response = await self._http.post(
            f"{self.auth_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=self._credentials,
        )
        body = _expect(response, 200)
        self._token = str(body["access_token"])

    @property
    def _auth(self) -> dict[str, str]:
        if self._token is None:
            raise RequestFailed("not authenticated")
        return {"Authorization": f"Bearer {self._token}"}

    async def upload(
        self,
        filename: str,
        content: AsyncIterator[bytes],
        *,
        content_type: str,
        retention_policy: str,
        description: str,
        tags: list[str],
    ) -> str:
        """Stream ``content`` to ``POST /api/v1/uploads``; return the file id."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("filename", filename),
            ("retention_policy", retention_policy),
            ("description", description),
        ]
        if retention_policy == "temporary":
            params.append(("ttl_days", "30"))
        params += [("tags", tag) for tag in tags]
        response = await self._http.post(
            "/api/v1/uploads",
            params=params,
            content=content,
            headers={**self._auth, "Content-Type": content_type},
            timeout=600.0,
        )
        return str(_expect(response, 202)["file_id"])

    async def wait_upload(self, file_id: str, timeout_s: float) -> dict[str, Any]:
        """Poll the upload's status until it is no longer queued."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = await self._http.get(f"/api/v1/uploads/{file_id}", headers=self._auth)
            if response.status_code != 404:
                body = _expect(response, 200)
                if body["status"] != "queued":
                    return body
            if time.monotonic() >= deadline:
                raise TimeoutError(f"upload {file_id} still queued after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        response = await self._http.get("/api/v1/search", params=params, headers=self._auth)
        items: list[dict[str, Any]] = _expect(response, 200)["items"]
        return items

    async def download_digest(self, file_id: str) -> tuple[int, str]:
        """Stream a file's content; return its size and sha256."""
        digest = hashlib.sha256()
        size = 0
        async with self._http.stream(
            "GET", f"/api/v1/files/{file_id}/content", headers=self._auth, timeout=600.0
        ) as response:
            if response.status_code != 200:
                await response.aread()
                _expect(response, 200)
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                digest.update(chunk)
        return size, digest.hexdigest()

    async def elements(self) -> list[dict[str, Any]]:
        response = await self._http.get("/api/v1/elements", headers=self._auth)
        items: list[dict[str, Any]] = _expect(response, 200)["items"]
        return items

    async def element(self, element_id: str) -> dict[str, Any]:
        for item in await self.elements():
            if item["element_id"] == element_id:
                return item
        raise RequestFailed(f"element {element_id} is not listed")

    async def element_modes(self) -> dict[str, str]:
        return {item["element_id"]: item["mode"] for item in await self.elements()}

    async def change_mode(
        self, element_id: str, target: str, *, reason: str, confirm: bool
    ) -> None:
        response = await self._http.post(
            f"/api/v1/elements/{element_id}/mode",
            json={"target_mode": target, "reason": reason, "confirm": confirm},
            headers=self._auth,
        )
        _expect(response, 202)

    async def wait_mode(self, element_id: str, mode: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (current := (await self.element(element_id))["mode"]) != mode:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{element_id} is still {current} after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def wait_mode_rejection(
        self, element_id: str, previous: Any, timeout_s: float
    ) -> dict[str, Any]:
        """Wait for a mode-change rejection newer than ``previous``; return it."""
        deadline = time.monotonic() + timeout_s
        while True:
            rejection = (await self.element(element_id)).get("last_mode_rejection")
            if rejection and rejection != previous:
                return dict(rejection)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no rejection from {element_id} after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def update_metadata(
        self, file_id: str, changes: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """PATCH a file's metadata; return the status and body (the caller judges)."""
        response = await self._http.patch(
            f"/api/v1/files/{file_id}", json=changes, headers=self._auth
        )
        return response.status_code, _body(response)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except json.JSONDecodeError:
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {"body": body}


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    body = _body(response)
    if response.status_code != status:
        detail = body.get("detail") or body.get("error_description") or body
        raise RequestFailed(
            f"{response.request.method} {response.request.url.path}: {response.status_code} "
            f"{detail}"
        )
    return body
