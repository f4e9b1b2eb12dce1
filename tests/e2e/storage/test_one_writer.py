"""A second worker started for an element that already has one refuses to start, clearly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from auth.testing import TestSigner
from base.settings import Settings
from events import create_topics
from tests.e2e.storage.worker_process import WorkerProcess
from tests.helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
async def test_a_second_worker_for_the_same_element_is_refused(
    backend: str, settings: Settings, jwks_file: Path, signer: TestSigner
) -> None:
    lane = f"one-writer-{backend}"
    settings = settings.model_copy(
        update={
            "topic_prefix": f"{settings.topic_prefix}.{lane}",
            "data_dir": settings.data_dir / lane,
        }
    )
    settings.data_dir.mkdir(parents=True)
    await create_topics(settings.kafka_bootstrap, settings.topic_names())
    where: dict[str, object] = (
        {"root": settings.data_dir / "se-one"}
        if backend == "local"
        else {"backend": "s3", "s3_prefix": f"one-writer-{uuid.uuid4().hex[:8]}"}
    )
    first = WorkerProcess(settings, jwks_file, signer.issuer, element_id="se-one", **where)
    second = WorkerProcess(settings, jwks_file, signer.issuer, element_id="se-one", **where)
    second.log = settings.data_dir / "second.log"
    try:
        first.start()
        await wait_until(first.ready_async, 30, message="first worker ready")
        second.start()
        await wait_until(lambda: second.exited() is not None, 30, message="second worker exits")
        assert second.exited() == 2
        log = second.log.read_text()
        assert "element se-one" in log
        assert "already has a writer" in log
        assert await first.ready_async(), "the first worker keeps running"
    finally:
        second.stop()
        first.stop()
