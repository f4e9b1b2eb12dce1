"""What the auth service's request handlers share, built once per process (by
:func:`auth.app.build_runtime`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.account_service import AccountService
from auth.keys import KeyManager
from auth.metrics import AuthMetrics
from auth.outbox import OutboxRelay
from auth.scopes import KNOWN_SCOPES
from auth.settings import AuthSettings
from auth.tokens import TokenService
from auth.verifier import TokenVerifier
from base.settings import Settings


@dataclass
class AuthRuntime:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    auth_settings: AuthSettings
    clock: Callable[[], datetime]
    engine: AsyncEngine
    redis: Redis
    keys: KeyManager
    accounts: AccountService
    tokens: TokenService
    verifier: TokenVerifier
    relay: OutboxRelay
    metrics: AuthMetrics
    known_scopes: frozenset[str] = KNOWN_SCOPES
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
