"""Services as an operator runs them log JSON lines, each with its service and a correlation
id, and answer ``/health/live`` and ``/health/ready`` — the projector included."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from base.settings import Settings
from events import create_topics
from tests.e2e.service_process import ServiceLauncher
from tests.pipeline import free_port

pytestmark = [pytest.mark.kafka]


async def test_the_projector_logs_json_with_correlation_ids_and_reports_its_health(
    settings: Settings, tmp_path: Path
) -> None:
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    port = free_port()
    env = {
        **os.environ,
        "ARTSTORE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "ARTSTORE_TOPIC_PREFIX": settings.topic_prefix,
        "ARTSTORE_DATABASE_URL": settings.database_url,
        "ARTSTORE_REDIS_URL": settings.redis_url,
        "ARTSTORE_PROJECTOR_METRICS_PORT": str(port),
        "ARTSTORE_PROJECTOR_GROUP_ID": f"{settings.topic_prefix}.projection-logs",
    }
    base = f"http://127.0.0.1:{port}"
    async with ServiceLauncher(
        "projector", ["--log-format", "json", "query", "projector"], base, tmp_path
    ) as launcher:
        projector = await launcher.start(env)
        await projector.wait_ready()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{base}/health/live")).status_code == 200
            ready = await client.get(f"{base}/health/ready")
            assert ready.json() == {"status": "ready"}
            metrics = (await client.get(f"{base}/metrics")).text
        assert await projector.terminate() == 0
    lines = [json.loads(line) for line in projector.stderr.splitlines() if line.strip()]
    assert any(line["msg"] == "projector started" for line in lines)
    assert all(line["service"] == "artstore-projector" for line in lines)
    assert all(line["correlation_id"] for line in lines)
    assert "artstore_projector_events_total" in metrics
