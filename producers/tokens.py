"""Access tokens from the auth service's token endpoint, cached and refreshed before expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from producers.errors import ConfigurationError, Unavailable, error_from_response

Clock = Callable[[], float]


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when (on the client's clock) to fetch the next one."""

    value: str
    expires_at: float
    refresh_at: float
    scope: str


class TokenProvider:
    """OAuth2 client credentials (RFC 6749 §4.4, ``client_secret_basic``).

    One token is shared by every call; a new one is fetched once ``refresh_fraction`` of the
    previous one's ``expires_in`` has passed, so a command never leaves with a token about to
    expire (workers check it was valid when the record was written). Concurrent callers wait
    for one fetch instead of each asking for a token.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str | None,
        client_secret: str | None,
        *,
        scope: str | None = None,
        refresh_fraction: float = 0.8,
        clock: Clock = time.monotonic,
    ) -> None:
        self._http = http
        self._url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._fraction = refresh_fraction
        self._clock = clock
        self._current: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0
        """How many tokens this provider has fetched (observability and tests)."""

    async def token(self, *, force: bool = False) -> str:
        """A valid access token, fetched only when none is cached or it is due for refresh."""
        async with self._lock:
            current = self._current
            if force or current is None or self._clock() >= current.refresh_at:
                current = await self._fetch()
                self._current = current
            return current.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the server refused it); the next call fetches a fresh token."""
        if self._current is not None and self._current.value == value:
            self._current = None

    async def _fetch(self) -> AccessToken:
        if not self._client_id or not self._secret:
            raise ConfigurationError(
                "no client credentials: set ARTSTORE_CLIENT_CLIENT_ID and "
                "ARTSTORE_CLIENT_CLIENT_SECRET (or client_id/client_secret in the config file)"
            )
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        started = self._clock()
        try:
            response = await self._http.post(
                self._url, data=form, auth=httpx.BasicAuth(self._client_id, self._secret)
            )
        except httpx.TransportError as exc:
            raise Unavailable(f"the auth service at {self._url} did not answer: {exc}") from exc
        body = _json(response)
        if response.status_code != 200:
            raise error_from_response(
                response.status_code, body, response.headers, what="token request refused"
            )
        lifetime = float(body.get("expires_in", 300))
        self.fetched += 1
        return AccessToken(
            value=str(body["access_token"]),
            expires_at=started + lifetime,
            refresh_at=started + lifetime * self._fraction,
            scope=str(body.get("scope", "")),
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
