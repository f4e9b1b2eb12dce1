"""Authenticated calls to the facade and the auth service, with errors typed on the way out."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from opentelemetry import propagate

from producers.errors import Unavailable, error_from_response
from producers.tokens import TokenProvider


def body_of(response: httpx.Response) -> Any:
    """The JSON body, or ``{}`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return {}


class AuthorizedHttp:
    """Sends requests with the current bearer token; a 401 fetches a new token and retries once
    (the token may have been revoked or signed by a key the server no longer trusts)."""

    def __init__(self, http: httpx.AsyncClient, tokens: TokenProvider, base_url: str) -> None:
        self.http = http
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def request(
        self, method: str, path: str, *, what: str, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """Send and return the response if its status is in ``ok``; raise the typed error else.

        Inside a span (an upload's, say) the request carries its ``traceparent``."""
        headers = dict(kwargs.pop("headers", None) or {})
        propagate.inject(headers)
        for attempt in (1, 2):
            token = await self.tokens.token()
            headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self.http.request(
                    method, self.url(path), headers=headers, **kwargs
                )
            except httpx.TransportError as exc:
                raise Unavailable(f"{what}: {self.base_url} did not answer ({exc})") from exc
            if response.status_code == 401 and attempt == 1:
                self.tokens.invalidate(token)
                continue
            if response.status_code in ok:
                return response
            raise error_from_response(
                response.status_code, body_of(response), response.headers, what=what
            )
        raise AssertionError("unreachable")

    async def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """Send and decode the JSON body of a 2xx answer."""
        ok = (200, 201, 202)
        return body_of(await self.request(method, path, what=what, ok=ok, **kwargs))

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, *, what: str, headers: dict[str, str]
    ) -> AsyncIterator[httpx.Response]:
        """A streamed GET; 200/206 are yielded, anything else raises the typed error."""
        for attempt in (1, 2):
            token = await self.tokens.token()
            sent = {**headers, "Authorization": f"Bearer {token}"}
            propagate.inject(sent)
            try:
                async with self.http.stream("GET", self.url(path), headers=sent) as response:
                    if response.status_code == 401 and attempt == 1:
                        self.tokens.invalidate(token)
                        continue
                    if response.status_code not in (200, 206):
                        await response.aread()
                        raise error_from_response(
                            response.status_code, body_of(response), response.headers, what=what
                        )
                    yield response
                    return
            except httpx.TransportError as exc:
                raise Unavailable(f"{what}: {self.base_url} did not answer ({exc})") from exc
