"""The HTTP facade: FastAPI app, its lifespan (connections) and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from minio import Minio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.asyncio import Redis
from starlette.exceptions import HTTPException as StarletteHTTPException

from auth import (
    DenyListCache,
    HttpJwksSource,
    RedisDenyList,
    SlidingWindowLimiter,
    TokenVerifier,
)
from base import telemetry
from base.health import HealthServer
from base.openapi import body, merged, problems, without_default_422
from base.serving import serve_until_stopped
from base.settings import Settings, broker_settings
from consumers import ProjectionStore, create_pool
from events import EventPublisher, make_broker
from events.staging import DirectoryWriter, S3Writer
from facade import (
    metrics,
    routes_audit,
    routes_dlq,
    routes_lifecycle,
    routes_read,
    routes_restore,
    routes_webhooks,
    routes_write,
)
from facade.audit_door import audit_requests
from facade.audit_journal import AuditJournal, unheld_journals
from facade.audit_relay import AuditRelay
from facade.cache import SearchCache
from facade.console import install_console
from facade.outages import OUTAGE_TYPES, RETRY_AFTER_S, outage_body, outage_of
from facade.problems import Problem
from facade.runtime import FacadeRuntime
from facade.security import Caller, RateLimit, requires
from facade.settings import FacadeSettings
from facade.staging import PART_SIZE, Staging, StreamStaging
from notifications import (
    AddressPolicy,
    NotificationSettings,
    Registrations,
    SealingUnavailable,
    SecretBox,
)
from notifications import migrate as migrate_notifications

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def _problem_response(status: int, body: dict[str, object], headers: dict[str, str]) -> Response:
    from facade.queries import dumps

    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(exc: RequestValidationError) -> tuple[str, str]:
    first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body", "header")]
    return ".".join(loc) or "request", str(first.get("msg", "invalid"))


def _install_error_handlers(app: FastAPI) -> None:
    # Each handler notes the detail on the request: the audit of a refused request says why.
    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> Response:
        request.state.problem_detail = exc.detail
        return _problem_response(exc.status, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        where, message = _validation_detail(exc)
        body = {"title": "Bad request", "status": 400, "detail": f"{where}: {message}"}
        request.state.problem_detail = body["detail"]
        return _problem_response(400, {**body, "parameter": where}, {})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        body = {"title": str(exc.detail), "status": exc.status_code, "detail": str(exc.detail)}
        request.state.problem_detail = str(exc.detail)
        return _problem_response(exc.status_code, body, dict(exc.headers or {}))

    async def outage(request: Request, exc: Exception) -> Response:
        what = outage_of(exc) or "a service the facade depends on"
        log.warning(
            "a dependency is away: 503",
            extra={"path": request.url.path, "away": what, "error": str(exc) or repr(exc)},
        )
        body = outage_body(what)
        request.state.problem_detail = body["detail"]
        return _problem_response(503, body, {"Retry-After": str(RETRY_AFTER_S)})

    for kind in OUTAGE_TYPES:
        app.add_exception_handler(kind, outage)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        if outage_of(exc) is not None:  # wrapped in something else
            return await outage(request, exc)
        log.exception("unhandled error", extra={"path": request.url.path})
        body = {"title": "Internal error", "status": 500, "detail": "an unexpected error occurred"}
        return _problem_response(500, body, {})


def _staging(settings: Settings, facade: FacadeSettings, s3: Minio | None) -> Staging:
    if facade.staging == "local" or s3 is None:
        return StreamStaging(DirectoryWriter(settings.data_dir / "staging"))
    return StreamStaging(
        S3Writer(s3, settings.s3_bucket, facade.staging_prefix, part_bytes=PART_SIZE)
    )


def _s3(settings: Settings) -> Minio:
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


def audit_journal_root(settings: Settings, facade: FacadeSettings) -> Path:
    """Where facade instances journal their audit events, each in a directory of its own."""
    return facade.audit_journal_dir or settings.data_dir / "facade-audit"


def instance_name(facade: FacadeSettings) -> str:
    """This instance's name: set, or ``<hostname>-<port>`` (the same across restarts)."""
    if facade.instance:
        return facade.instance
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:80] or "facade"
    return f"{host}-{facade.port}"


def _secret_box(notifications: NotificationSettings) -> SecretBox:
    try:
        return SecretBox.from_setting(notifications.secret_keys)
    except SealingUnavailable as exc:
        log.error("webhooks disabled: %s", exc)
        return SecretBox([])


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    facade: FacadeSettings,
    *,
    verifier: TokenVerifier | None = None,
    notifications: NotificationSettings | None = None,
) -> AsyncIterator[FacadeRuntime]:
    """Connect everything the facade needs; close it all on exit."""
    notifications = notifications or NotificationSettings()
    # First: a journal another process holds stops the start before anything connects.
    root = audit_journal_root(settings, facade)
    journal = AuditJournal(root / instance_name(facade))
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(journal.close)
        adopted = await asyncio.to_thread(unheld_journals, root, journal.directory)
        for other in adopted:
            stack.callback(other.close)
        pool = await create_pool(
            settings.database_url, application_name="artstore-facade", size=10, custom_plans=True
        )
        stack.push_async_callback(pool.close)
        await pool.execute("SELECT 1")
        await migrate_notifications(settings.database_url)
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        revocations = DenyListCache(RedisDenyList(redis, prefix=facade.revocation_prefix), redis)
        await revocations.start()
        stack.push_async_callback(revocations.stop)
        verifier = verifier or TokenVerifier(
            HttpJwksSource(facade.jwks_url), issuer=facade.issuer, audience=facade.audience
        )
        if verifier.revocations is None:
            verifier = verifier.with_revocations(revocations)
        broker = make_broker(broker_settings(settings, client_id="artstore-facade"))
        await broker.start()
        stack.push_async_callback(broker.stop)
        s3 = _s3(settings) if facade.staging == "s3" else None
        rate_limit = None
        if facade.rate_limit > 0:
            limiter = SlidingWindowLimiter(
                redis, prefix=f"{facade.cache_prefix}rate:", window_s=facade.rate_limit_window_s
            )
            rate_limit = RateLimit(limiter, facade.rate_limit)
        publisher = EventPublisher(
            broker, settings.topic_names(), max_message_bytes=settings.max_message_bytes
        )
        audit = AuditRelay(journal, publisher, capacity=facade.audit_buffer)
        await asyncio.to_thread(audit.resume, adopted)
        stack.push_async_callback(audit.close)
        runtime = FacadeRuntime(
            settings=settings,
            facade=facade,
            verifier=verifier,
            pool=pool,
            store=ProjectionStore(pool),
            redis=redis,
            cache=SearchCache(
                redis,
                prefix=facade.cache_prefix,
                generation_key=facade.cache_generation_key,
                ttl_s=facade.cache_ttl_s,
            ),
            broker=broker,
            publisher=publisher,
            staging=_staging(settings, facade, s3),
            audit=audit,
            s3=s3,
            rate_limit=rate_limit,
            notifications=notifications,
            notification_policy=AddressPolicy.of(
                notifications.allowed_networks, notifications.denied_networks
            ),
            webhooks=Registrations(
                pool,
                _secret_box(notifications),
                settings.topic_names(),
                max_message_bytes=settings.max_message_bytes,
            ),
        )
        stop = asyncio.Event()
        relay = asyncio.create_task(audit.run(stop), name="audit-relay")
        try:
            yield runtime
        finally:
            stop.set()
            await relay
            # Before the broker stops (the exit stack closes the rest in reverse order).
            await audit.drain(settings.graceful_timeout_s)


def create_app(
    settings: Settings,
    facade: FacadeSettings,
    *,
    verifier: TokenVerifier | None = None,
    notifications: NotificationSettings | None = None,
) -> FastAPI:
    """The facade app; its lifespan opens the connections (see :func:`open_runtime`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The internal metrics port: the same registry as /metrics, for a scraper without a
        # token. Opened first, so a facade that can't reach its database is still seen.
        scrape = HealthServer(REGISTRY, None)
        if facade.metrics_port is not None:
            await scrape.start(facade.metrics_host, facade.metrics_port)
        try:
            async with open_runtime(
                settings, facade, verifier=verifier, notifications=notifications
            ) as runtime:
                app.state.runtime = runtime
                yield
        finally:
            await scrape.stop()

    app = FastAPI(
        title="ArtStore",
        description="Search, read and download archived files; upload and change them by command.",
        version="1",
        lifespan=lifespan,
    )
    app.openapi = without_default_422(app)  # type: ignore[method-assign]
    telemetry.instrument_app(app)
    _install_error_handlers(app)
    app.include_router(routes_read.router)
    app.include_router(routes_write.router)
    app.include_router(routes_lifecycle.router)
    app.include_router(routes_restore.router)
    install_console(app)
    app.include_router(routes_audit.router)
    app.include_router(routes_dlq.router)
    app.include_router(routes_webhooks.router)

    @app.middleware("http")
    async def audit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        return await audit_requests(
            request,
            call_next,
            lambda: request.app.state.runtime.audit,
            lambda: _problem_response(
                503,
                {
                    "title": "Audit trail unavailable",
                    "status": 503,
                    "detail": "downloads wait until their audit can be recorded; retry later",
                },
                {"Retry-After": "30"},
            ),
        )

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.REQUESTS.labels(name, str(response.status_code)).inc()
        metrics.LATENCY.labels(name).observe(time.perf_counter() - started)
        return response

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/health/ready",
        tags=["health"],
        responses=merged(body(200, "application/json"), problems(503)),
    )
    async def ready(request: Request) -> Response:
        runtime: FacadeRuntime = request.app.state.runtime
        problems = []
        try:
            await runtime.pool.fetchval("SELECT 1 FROM projection_offsets LIMIT 1")
        except Exception as exc:
            problems.append(f"database: {exc}")
        try:
            await runtime.redis.ping()
        except Exception as exc:
            problems.append(f"redis: {exc}")
        if problems:
            return _problem_response(
                503, {"title": "Not ready", "status": 503, "detail": "; ".join(problems)}, {}
            )
        return Response('{"status":"ready"}', media_type="application/json")

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (scope audit:read)",
        response_class=PlainTextResponse,
        responses=merged(
            body(200, CONTENT_TYPE_LATEST.split(";")[0]), problems(400, 401, 403, 429, 503)
        ),
    )
    async def prometheus(caller: Annotated[Caller, Depends(requires("audit:read"))]) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(settings: Settings, facade: FacadeSettings) -> bool:
    """Serve the facade until SIGTERM/SIGINT (then exit cleanly); False if it never started."""
    return serve_until_stopped(
        create_app(settings, facade),
        host=facade.host,
        port=facade.port,
        graceful_timeout_s=settings.graceful_timeout_s,
    )
