"""The console's collaborators, built once per process on the facade's runtime."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from facade.console.pipeline import LagReader
from facade.console.sessions import SessionStore
from facade.console.settings import ConsoleSettings
from facade.console.templating import template_environment
from facade.runtime import FacadeRuntime

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class ConsoleRuntime:
    """Settings, sessions, templates and the broker's lag, beside the facade's runtime."""

    runtime: FacadeRuntime
    settings: ConsoleSettings
    sessions: SessionStore
    templates: Jinja2Templates
    lag: LagReader

    @property
    def auth_url(self) -> str:
        """Where sign-in exchanges credentials: set explicitly, or the tokens' issuer."""
        return (self.settings.auth_url or self.runtime.facade.issuer).rstrip("/")

    @classmethod
    def on(cls, runtime: FacadeRuntime) -> ConsoleRuntime:
        settings = ConsoleSettings()
        return cls(
            runtime=runtime,
            settings=settings,
            sessions=SessionStore(runtime.redis, f"{runtime.facade.cache_prefix}console:session:"),
            templates=Jinja2Templates(env=template_environment(TEMPLATES)),
            lag=LagReader(runtime.settings, timeout_s=settings.lag_timeout_s),
        )


def console_of(request: Request) -> ConsoleRuntime:
    """The console's collaborators, built on the facade's runtime at first use."""
    console = getattr(request.app.state, "console", None)
    if console is None:
        console = ConsoleRuntime.on(request.app.state.runtime)
        request.app.state.console = console
    return console
