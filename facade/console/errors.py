"""What a console page answers when it cannot do what was asked: a page with the reason."""

from __future__ import annotations


class ConsoleError(Exception):
    """A 4xx (or 503) shown as a console page naming what was wrong and how to go on."""

    def __init__(
        self, status: int, title: str, detail: str, *, audited_elsewhere: bool = False
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.audited_elsewhere = audited_elsewhere
        """The service that refused (the auth service) has recorded the refusal itself."""


class SignedOut(Exception):
    """No live session: the browser is sent to the sign-in page (then back to ``next_url``)."""

    def __init__(self, next_url: str, notice: str | None = None) -> None:
        super().__init__(notice or "sign in")
        self.next_url = next_url
        self.notice = notice
