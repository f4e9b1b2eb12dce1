"""What the facade's routes share: database pool, verifier, cache, publisher, staging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from faststream.kafka import KafkaBroker
from minio import Minio
from pydantic import TypeAdapter
from redis.asyncio import Redis

from auth import TokenVerifier
from base.settings import Settings
from consumers import ProjectionStore
from events import ElementBackend, EventPublisher
from facade.audit_relay import AuditRelay
from facade.cache import SearchCache
from facade.security import RateLimit
from facade.settings import FacadeSettings
from facade.staging import Staging
from notifications import AddressPolicy, NotificationSettings, Registrations
from storage_workers import StorageBackend, open_backend

_BACKEND = TypeAdapter(ElementBackend)


@dataclass
class FacadeRuntime:
    """Connections and collaborators, built once per process (see ``facade.app``)."""

    settings: Settings
    facade: FacadeSettings
    verifier: TokenVerifier
    pool: asyncpg.Pool
    store: ProjectionStore
    redis: Redis
    cache: SearchCache
    broker: KafkaBroker
    publisher: EventPublisher
    staging: Staging
    audit: AuditRelay
    s3: Minio | None = None
    rate_limit: RateLimit | None = None
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    notification_policy: AddressPolicy = field(default_factory=AddressPolicy)
    webhooks: Registrations | None = None
    _backends: dict[str, tuple[Any, StorageBackend]] = field(default_factory=dict)

    def backend_for(self, element_id: str, announced: Any) -> StorageBackend:
        """The storage of an element as its latest ElementRegistered described it."""
        cached = self._backends.get(element_id)
        if cached is not None and cached[0] == announced:
            return cached[1]
        backend = open_backend(
            _BACKEND.validate_python(announced),
            s3_access_key=self.settings.s3_access_key,
            s3_secret_key=self.settings.s3_secret_key,
        )
        self._backends[element_id] = (announced, backend)
        return backend
