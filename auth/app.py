"""The auth service: wiring of adapters and handlers into a FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from aiokafka import AIOKafkaClient
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text

from auth.account_refusals import audit_refusal
from auth.account_service import AccountService
from auth.accounts import AccountError
from auth.admin_routes import BearerRejected
from auth.admin_routes import router as admin_router
from auth.audit import AuditTrail, EventOutboxPublisher
from auth.credentials import SecretHasher
from auth.db import create_engine, migrate
from auth.keys import KeyManager, NoSigningKey, utc_now
from auth.metrics import AuthMetrics
from auth.outbox import OutboxMessage, OutboxPublisher, OutboxRelay
from auth.ratelimit import SlidingWindowLimiter
from auth.revocation import RedisDenyList
from auth.routes import router as oauth_router
from auth.runtime import AuthRuntime
from auth.settings import AuthSettings
from auth.tokens import TokenService
from auth.verifier import TokenVerifier
from base import telemetry
from base.openapi import body, merged
from base.outages import GENERIC, RETRY_AFTER_S, outage_of, outage_types
from base.settings import Settings, broker_settings
from events import EventPublisher, make_broker

log = logging.getLogger(__name__)


class KafkaOutboxPublisher:
    """Connects to Kafka on first use (so the service starts while Kafka is away).

    Before starting the broker it bootstraps a client of its own and closes it: a broker whose
    start fails leaves an unclosed producer behind, and the relay retries for as long as Kafka
    is away.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._broker = make_broker(broker_settings(settings, client_id="artstore-auth"))
        self._inner: EventOutboxPublisher | None = None

    async def _connect(self) -> EventOutboxPublisher:
        probe = AIOKafkaClient(
            bootstrap_servers=self._settings.kafka_bootstrap, client_id="artstore-auth"
        )
        try:
            await probe.bootstrap()
        finally:
            await probe.close()
        try:
            await self._broker.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._broker.stop()
            raise
        publisher = EventPublisher(
            self._broker,
            self._settings.topic_names(),
            max_message_bytes=self._settings.max_message_bytes,
        )
        return EventOutboxPublisher(publisher)

    async def publish_batch(self, messages: Sequence[OutboxMessage]) -> None:
        if self._inner is None:
            self._inner = await self._connect()
        await self._inner.publish_batch(messages)

    async def close(self) -> None:
        await self._broker.stop()


def redis_client(url: str, *, max_connections: int = 64) -> Redis:
    """A client whose pool makes callers wait for a free connection rather than fail, so a
    burst larger than the pool is rate-limited exactly instead of hitting the redis-down policy.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5.0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )
    return Redis(connection_pool=pool)


async def build_runtime(
    settings: Settings,
    auth_settings: AuthSettings,
    *,
    clock: Callable[[], datetime],
    publisher: OutboxPublisher,
    metrics: AuthMetrics,
) -> AuthRuntime:
    """Connect, migrate, make sure a signing key exists, and wire the handlers."""
    engine = create_engine(settings.database_url)
    await migrate(engine)
    redis = redis_client(settings.redis_url)
    keys = KeyManager(
        engine, auth_settings, clock, on_rotated=lambda kid: metrics.key_rotations.inc()
    )
    await keys.rotate_if_due()
    hasher = await asyncio.to_thread(SecretHasher, auth_settings.bcrypt_cost)
    audit = AuditTrail(
        settings.topic_names(), max_message_bytes=settings.max_message_bytes, clock=clock
    )
    relay = OutboxRelay(
        engine,
        publisher,
        clock=clock,
        batch_size=auth_settings.outbox_batch_size,
        poll_interval=auth_settings.outbox_poll_interval.total_seconds(),
        retention_s=auth_settings.outbox_retention.total_seconds(),
        max_backoff=auth_settings.outbox_max_backoff.total_seconds(),
    )
    deny_list = RedisDenyList(
        redis,
        prefix=auth_settings.redis_prefix,
        retention=auth_settings.max_command_age + auth_settings.leeway,
    )
    verifier = TokenVerifier(
        keys,
        issuer=auth_settings.issuer,
        audience=auth_settings.audience,
        leeway=auth_settings.leeway,
        revocations=deny_list,
        clock=clock,
    )
    limiter = SlidingWindowLimiter(
        redis,
        prefix=auth_settings.redis_prefix,
        window_s=auth_settings.rate_limit_window.total_seconds(),
        when_unavailable=auth_settings.redis_down_policy,
    )
    accounts = AccountService(
        engine, hasher, audit, auth_settings, env=settings.env, clock=clock, on_commit=relay.notify
    )
    tokens = TokenService(
        engine=engine,
        hasher=hasher,
        keys=keys,
        limiter=limiter,
        deny_list=deny_list,
        verifier=verifier,
        audit=audit,
        settings=auth_settings,
        metrics=metrics,
        clock=clock,
        on_commit=relay.notify,
    )
    return AuthRuntime(
        settings=settings,
        auth_settings=auth_settings,
        clock=clock,
        engine=engine,
        redis=redis,
        keys=keys,
        accounts=accounts,
        tokens=tokens,
        verifier=verifier,
        relay=relay,
        metrics=metrics,
    )


def create_app(
    settings: Settings,
    auth_settings: AuthSettings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    publisher: OutboxPublisher | None = None,
    background: bool = True,
) -> FastAPI:
    """The auth service. ``background=False`` skips the key scheduler and outbox relay loops
    (tests drive them explicitly); ``publisher`` replaces the Kafka outbox publisher.
    """
    auth_settings = auth_settings or AuthSettings()
    metrics = AuthMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kafka = KafkaOutboxPublisher(settings) if publisher is None else None
        runtime = await build_runtime(
            settings,
            auth_settings,
            clock=clock,
            publisher=publisher or kafka,  # type: ignore[arg-type]
            metrics=metrics,
        )
        app.state.runtime = runtime
        created = await runtime.accounts.bootstrap_admin()
        if created is not None and auth_settings.bootstrap_admin_secret is None:
            # Shown once, on stdout, never logged: the operator copies it from here.
            print(
                f"ArtStore bootstrap admin created: client_id={created.account.client_id} "
                f"client_secret={created.secret}",
                file=sys.stdout,
                flush=True,
            )
        if background:
            runtime.tasks.append(asyncio.create_task(runtime.keys.run(runtime.stop)))
            runtime.tasks.append(asyncio.create_task(runtime.relay.run(runtime.stop)))
        try:
            yield
        finally:
            runtime.stop.set()
            for task in runtime.tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=10)
            if kafka is not None:
                with contextlib.suppress(Exception):
                    await kafka.close()
            await runtime.redis.aclose()
            await runtime.engine.dispose()

    app = FastAPI(title="ArtStore auth", version="1", lifespan=lifespan)
    telemetry.instrument_app(app)
    app.include_router(oauth_router)
    app.include_router(admin_router)

    # A refused account change is audited like the change itself (auth/account_refusals.py).
    @app.exception_handler(BearerRejected)
    async def bearer_rejected(request: Request, exc: BearerRejected) -> Response:
        error = exc.error
        await audit_refusal(
            request, status=error.status_code, reason=error.description, error=error.error
        )
        return JSONResponse(
            {"error": error.error, "error_description": error.description},
            status_code=error.status_code,
            headers={"WWW-Authenticate": error.www_authenticate()},
        )

    @app.exception_handler(AccountError)
    async def account_error(request: Request, exc: AccountError) -> Response:
        await audit_refusal(
            request, status=exc.status_code, reason=exc.message, error=type(exc).__name__
        )
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    # PostgreSQL or Redis away: 503 with the reason, in OAuth's words, never a 500.
    async def outage(request: Request, exc: Exception) -> Response:
        what = outage_of(exc) or GENERIC
        log.warning(
            "a dependency is away: 503",
            extra={"path": request.url.path, "away": what, "error": str(exc) or repr(exc)},
        )
        return JSONResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": f"{what} is not answering; retry later",
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for kind in outage_types():
        app.add_exception_handler(kind, outage)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        reason = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        await audit_refusal(request, status=422, reason=reason, error="invalid_request")
        return await request_validation_exception_handler(request, exc)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/health/ready",
        tags=["health"],
        responses=merged(body(200, "application/json"), body(503, "application/json")),
    )
    async def ready(request: Request) -> Response:
        runtime: AuthRuntime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {exc.__class__.__name__}"
        try:
            runtime.keys.signing_key()
            checks["signing_key"] = "ok"
        except NoSigningKey:
            checks["signing_key"] = "missing"
        try:
            await runtime.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            # Not fatal when the policy is to allow: tokens are still issued, unlimited.
            checks["redis"] = f"unavailable: {exc.__class__.__name__}"
        fatal = checks["database"] != "ok" or checks["signing_key"] != "ok"
        if checks["redis"] != "ok" and auth_settings.redis_down_policy == "deny":
            fatal = True
        return JSONResponse(
            {"status": "unavailable" if fatal else "ok", "checks": checks},
            status_code=503 if fatal else 200,
        )

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics_endpoint(request: Request) -> Response:
        runtime: AuthRuntime = request.app.state.runtime
        with contextlib.suppress(Exception):
            metrics.outbox_pending.set(await runtime.relay.pending())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
