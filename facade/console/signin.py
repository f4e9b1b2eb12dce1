"""Sign-in: the operator's client id and secret exchanged for an access token (RFC 6749 §4.4)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


class SignInRefused(Exception):
    """The auth service refused the credentials, or could not be asked; ``str`` says which."""


@dataclass(frozen=True)
class IssuedToken:
    """The token the auth service issued."""

    access_token: str
    expires_in: int


async def exchange_credentials(
    auth_url: str, client_id: str, client_secret: str, *, timeout_s: float
) -> IssuedToken:
    """Client credentials against ``auth_url``'s token endpoint (``client_secret_post``)."""
    try:
        async with httpx.AsyncClient(base_url=auth_url, timeout=timeout_s) as client:
            response = await client.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": client_secret,
                },
            )
    except httpx.HTTPError as exc:
        raise SignInRefused(f"the auth service could not be reached ({exc}); try again") from None
    if response.status_code == 429:
        raise SignInRefused("too many sign-in attempts; wait a minute and try again")
    if response.status_code in (400, 401):
        raise SignInRefused("unknown client id, wrong secret, or the account is not active")
    if response.status_code != 200:
        raise SignInRefused(f"the auth service answered {response.status_code}; try again")
    body = response.json()
    return IssuedToken(str(body["access_token"]), int(body.get("expires_in", 900)))
