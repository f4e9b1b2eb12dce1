"""Settings of the operator's console, read from ``ARTSTORE_CONSOLE_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """Where sign-in asks for tokens, how the session cookie is set, how long lists are."""

    model_config = SettingsConfigDict(env_prefix="ARTSTORE_CONSOLE_", extra="ignore")

    auth_url: str | None = Field(
        None,
        description="Base URL of the auth service; by default the facade's expected issuer.",
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        "auto", description="`auto`: Secure when the request came over TLS."
    )
    page_size: int = Field(50, ge=5, le=500)
    auth_timeout_s: float = Field(10.0, gt=0)
    lag_timeout_s: float = Field(3.0, gt=0, description="Bound on asking the broker for lag.")
