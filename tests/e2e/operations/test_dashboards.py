"""Every metric the Grafana dashboard and the alert rules name is one a running service exports.

The services run as an operator runs them, each its own process on the real stack: the auth
service, the projector, the facade (its internal metrics port, as compose scrapes it) and a
storage worker, the facade and the worker verifying tokens with the auth service's keys. Each
one's ``/metrics`` is read the way Prometheus reads it, and every name the dashboard's and the
rules' PromQL use must be a series one of them gives (``up`` and ``ALERTS`` excepted: Prometheus
makes those). Families a service declares are exported before anything has happened, so a
counter of rejections by reason counts even when nothing was rejected yet.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from artstore.stack import StackEnv
from base.settings import Settings
from events import Topic, create_topics
from tests.e2e.service_process import ServiceLauncher, ServiceProcess
from tests.helpers import wait_until
from tests.monitoring import PROMETHEUS_MADE, series_names, used_metric_names
from tests.pipeline import free_port, service_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
]

BOOTSTRAP_LINE = re.compile(
    r"ArtStore bootstrap admin created: client_id=(?P<client_id>\S+) client_secret=(?P<secret>\S+)"
)
ELEMENT = "se-dash-01"


@dataclass
class Deployment:
    """The running services, and where each one's metrics are read."""

    auth: ServiceProcess
    projector: ServiceProcess
    facade: ServiceProcess
    worker: ServiceProcess
    facade_metrics_url: str
    admin_token: str

    def scrape_urls(self) -> dict[str, str]:
        return {
            "auth": f"{self.auth.base_url}/metrics",
            "projector": f"{self.projector.base_url}/metrics",
            "facade": self.facade_metrics_url,
            "worker": f"{self.worker.base_url}/metrics",
        }


async def scrape(url: str) -> str:
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("text/plain"), url
    return response.text


@pytest.fixture(scope="module")
async def deployment(
    stack: StackEnv,
    settings: Settings,
    redis_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Deployment]:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    out = tmp_path_factory.mktemp("services")
    env = service_env(
        stack, settings, ARTSTORE_S3_BUCKET=settings.s3_bucket, ARTSTORE_LOG_LEVEL="WARNING"
    )
    auth_prefix = f"{redis_namespace}auth:"
    ports = {name: free_port() for name in ("auth", "projector", "facade", "metrics", "worker")}
    auth_url = f"http://127.0.0.1:{ports['auth']}"
    auth_env = {
        **env,
        "ARTSTORE_AUTH_ISSUER": auth_url,
        "ARTSTORE_AUTH_BCRYPT_COST": "4",
        "ARTSTORE_AUTH_REDIS_PREFIX": auth_prefix,
    }
    projector_env = {
        **env,
        "ARTSTORE_PROJECTOR_METRICS_PORT": str(ports["projector"]),
        "ARTSTORE_PROJECTOR_GROUP_ID": f"{settings.topic_prefix}.projection-dashboards",
        "ARTSTORE_PROJECTOR_DLQ_POLL_S": "0.5",
        "ARTSTORE_PROJECTOR_CACHE_GENERATION_KEY": f"{redis_namespace}query:generation",
    }
    facade_env = {
        **env,
        "ARTSTORE_FACADE_PORT": str(ports["facade"]),
        "ARTSTORE_FACADE_METRICS_PORT": str(ports["metrics"]),
        "ARTSTORE_FACADE_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
        "ARTSTORE_FACADE_ISSUER": auth_url,
        "ARTSTORE_FACADE_REVOCATION_PREFIX": auth_prefix,
        "ARTSTORE_FACADE_STAGING": "local",
        "ARTSTORE_FACADE_CACHE_PREFIX": f"{redis_namespace}query:",
        "ARTSTORE_FACADE_CACHE_GENERATION_KEY": f"{redis_namespace}query:generation",
    }
    worker_env = {
        **env,
        "ARTSTORE_STORAGE_HEALTH_PORT": str(ports["worker"]),
        "ARTSTORE_STORAGE_JWKS_URL": f"{auth_url}/.well-known/jwks.json",
        "ARTSTORE_STORAGE_TOKEN_ISSUER": auth_url,
        "ARTSTORE_STORAGE_REVOCATION_PREFIX": auth_prefix,
        "ARTSTORE_STORAGE_HEARTBEAT_INTERVAL_S": "1",
        "ARTSTORE_STORAGE_SESSION_TIMEOUT_MS": "6000",
        # 1 GB with floors in percent only: "ok" while the disk has more than 150 MB free.
        "ARTSTORE_STORAGE_CAPACITY_BYTES": str(1000**3),
        "ARTSTORE_STORAGE_FLOOR_WARNING_BYTES": "1",
        "ARTSTORE_STORAGE_FLOOR_CRITICAL_BYTES": "1",
        "ARTSTORE_STORAGE_FLOOR_FULL_BYTES": "1",
    }
    root = out / ELEMENT
    worker_args = ["storage", "worker", "--element-id", ELEMENT, "--root", str(root)]
    worker_args += ["--mode", "rw", "--priority", "10"]
    base = "http://127.0.0.1"
    async with (
        ServiceLauncher(
            "auth", ["auth", "serve", "--port", str(ports["auth"])], auth_url, out
        ) as auth_launcher,
        ServiceLauncher(
            "projector", ["query", "projector"], f"{base}:{ports['projector']}", out
        ) as projector_launcher,
        ServiceLauncher(
            "facade", ["query", "facade"], f"{base}:{ports['facade']}", out
        ) as facade_launcher,
        ServiceLauncher("worker", worker_args, f"{base}:{ports['worker']}", out) as worker_launcher,
    ):
        auth = await auth_launcher.start(auth_env)
        # The projector migrates the database the facade reads: it goes first.
        projector = await projector_launcher.start(projector_env)
        await auth.wait_ready()
        await projector.wait_ready()
        facade = await facade_launcher.start(facade_env)
        worker = await worker_launcher.start(worker_env)
        await facade.wait_ready()
        await worker.wait_ready()
        printed = BOOTSTRAP_LINE.search(auth.stdout)
        assert printed is not None, auth.stdout
        async with httpx.AsyncClient(base_url=auth_url, timeout=10.0) as http:
            issued = await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(printed["client_id"], printed["secret"]),
            )
        assert issued.status_code == 200, issued.text
        yield Deployment(
            auth,
            projector,
            facade,
            worker,
            f"{base}:{ports['metrics']}/metrics",
            issued.json()["access_token"],
        )
        for service in (facade, worker, projector, auth):
            assert await service.terminate() == 0, f"{service.name}:\n{service.stderr[-2000:]}"


async def test_every_metric_the_dashboard_and_the_rules_name_is_exported(
    deployment: Deployment,
) -> None:
    exported: dict[str, set[str]] = {}
    for service, url in deployment.scrape_urls().items():
        exported[service] = series_names(await scrape(url))
        assert exported[service], f"{service} exports nothing"
    every = set().union(*exported.values())
    used = used_metric_names()
    assert len(used) >= 25
    missing = {
        name: where for name, where in used.items() if name not in every | set(PROMETHEUS_MADE)
    }
    assert not missing, "named but exported by no running service:\n" + "\n".join(
        f"  {name}: {', '.join(where)}" for name, where in sorted(missing.items())
    )
    # Each service exports its own part of what the dashboard shows.
    assert "artstore_auth_tokens_issued_total" in exported["auth"]
    assert "artstore_dlq_records" in exported["projector"]
    assert "artstore_facade_request_seconds_bucket" in exported["facade"]
    assert "artstore_storage_mode" in exported["worker"]


async def test_the_check_fails_for_a_name_no_service_exports(deployment: Deployment) -> None:
    """The set compared against is what the services export, not anything at all."""
    every: set[str] = set()
    for url in deployment.scrape_urls().values():
        every |= series_names(await scrape(url))
    for name in (
        "artstore_storage_files_stored",  # a counter is scraped as ..._total
        "artstore_facade_request_seconds_total",  # a histogram has no _total
        "artstore_dashboard_nonsense",
    ):
        assert name not in every


async def test_the_facade_metrics_port_serves_the_registry_the_public_one_guards(
    deployment: Deployment,
) -> None:
    public = f"{deployment.facade.base_url}/metrics"
    async with httpx.AsyncClient(timeout=10.0) as http:
        refused = await http.get(public)
        allowed = await http.get(
            public, headers={"Authorization": f"Bearer {deployment.admin_token}"}
        )
        not_health = await http.get(
            deployment.facade_metrics_url.removesuffix("/metrics") + "/health/ready"
        )
    assert refused.status_code == 401
    assert allowed.status_code == 200
    internal = series_names(await scrape(deployment.facade_metrics_url))
    assert series_names(allowed.text) == internal
    # The internal port serves metrics only: readiness is the facade's own, on its main port.
    assert not_health.status_code == 404


async def test_the_search_latency_panel_selects_the_label_the_facade_writes(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(base_url=deployment.facade.base_url, timeout=10.0) as http:
        found = await http.get(
            "/api/v1/search",
            params={"q": "anything"},
            headers={"Authorization": f"Bearer {deployment.admin_token}"},
        )
    assert found.status_code == 200, found.text
    text = await scrape(deployment.facade_metrics_url)
    assert re.search(
        r'^artstore_facade_request_seconds_bucket\{.*route="/api/v1/search"', text, re.M
    )
    assert re.search(r'^artstore_facade_requests_total\{.*route="/api/v1/search"', text, re.M)


async def test_the_worker_shows_its_mode_capacity_status_and_fixity(
    deployment: Deployment,
) -> None:
    async def gauges() -> dict[str, float]:
        text = await scrape(f"{deployment.worker.base_url}/metrics")
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(("artstore_storage_mode", "artstore_storage_capacity_status"))
            or line.startswith("artstore_storage_fixity_")
        }

    shown = await gauges()
    element = f'element_id="{ELEMENT}"'
    assert shown[f'artstore_storage_mode{{{element},mode="rw"}}'] == 1
    assert shown[f'artstore_storage_mode{{{element},mode="ro"}}'] == 0
    assert shown[f'artstore_storage_capacity_status{{{element},status="ok"}}'] == 1
    assert shown[f'artstore_storage_capacity_status{{{element},status="full"}}'] == 0
    assert shown[f"artstore_storage_fixity_failed_files{{{element}}}"] == 0

    async def first_pass_done() -> bool:
        return (await gauges())[
            f"artstore_storage_fixity_last_pass_timestamp_seconds{{{element}}}"
        ] > 0

    # The empty element's first fixity pass starts at once; the gauge shows when it finished.
    await wait_until(first_pass_done, 30, interval=0.5, message="first fixity pass shown")


async def test_the_dlq_depth_follows_the_dead_letter_topic(
    deployment: Deployment, settings: Settings
) -> None:
    dlq = settings.topic_names().name(Topic.DLQ)

    async def depth_is(expected: float) -> bool:
        text = await scrape(f"{deployment.projector.base_url}/metrics")
        held = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("artstore_dlq_records{") and f'topic="{dlq}"' in line
        ]
        return len(held) == 3 and sum(held) == expected  # one gauge per partition

    await wait_until(lambda: depth_is(0), 30, interval=0.2, message="DLQ depth 0")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(dlq, b"{}", key=f"letter-{n}".encode(), partition=n)
    finally:
        await producer.stop()
    await wait_until(lambda: depth_is(3), 30, interval=0.2, message="DLQ depth 3")
