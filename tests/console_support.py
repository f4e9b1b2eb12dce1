"""A browser's view of the console over HTTP, for tests that drive its forms: cookies, and the
CSRF token its pages carry."""

from __future__ import annotations

import re

import httpx

from producers import ClientSettings
from tests.pipeline import Pipeline

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A browser's view of the console: its cookies, and the CSRF token its pages carry."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.http = httpx.AsyncClient(base_url=pipeline.facade_url, timeout=30.0)
        self.csrf = ""

    async def __aenter__(self) -> Console:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def sign_in(self, client_id: str, secret: str) -> httpx.Response:
        form = await self.http.get("/console/signin")
        token = CSRF.search(form.text)
        assert token is not None
        answer = await self.http.post(
            "/console/signin",
            data={
                "client_id": client_id,
                "client_secret": secret,
                "csrf_token": token.group(1),
                "next": "/console/elements",
            },
        )
        if answer.status_code == 303:
            page = await self.http.get("/console/elements")
            found = CSRF.search(page.text)
            assert found is not None
            self.csrf = found.group(1)
        return answer

    async def submit(self, path: str, **fields: str) -> httpx.Response:
        """Post a form as the page would, CSRF token included (unless given)."""
        return await self.http.post(path, data={"csrf_token": self.csrf, **fields})


def credentials(account: ClientSettings) -> tuple[str, str]:
    assert account.client_id is not None
    assert account.client_secret is not None
    return account.client_id, account.client_secret.get_secret_value()
