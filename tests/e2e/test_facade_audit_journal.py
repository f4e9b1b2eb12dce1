"""Downloads served while Kafka is away are audited even when the facade dies before Kafka is
back: a facade process serves them from its own broker's files while that broker is stopped,
is killed with SIGKILL, and once started again with the broker back, every download's audit
event reaches ``artstore.audit`` from its journal."""

from __future__ import annotations

import secrets
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from artstore.stack import StackEnv
from auth.testing import TestSigner
from base.settings import Settings
from consumers import ProjectorSettings, migrate
from events import (
    AuditRecorded,
    ElementRegistered,
    FileStored,
    LocalBackend,
    Mode,
    Topic,
    create_topics,
)
from tests.e2e.service_process import ServiceLauncher
from tests.e2e.storage.trials import OwnBroker
from tests.helpers import Received, read_events, wait_until
from tests.integration.query.support import (
    BASE_TIME,
    FactPublisher,
    fetchval,
    make_record,
    running_projector,
)
from tests.pipeline import facade_env, free_port, served_jwks

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
]

ELEMENT = "se-journal"
READER = "sa_test_reader_0000beef"
DOWNLOADS = 5


@pytest.fixture(scope="module")
def signer() -> TestSigner:
    return TestSigner(issuer="https://auth.audit-journal.test")


@pytest.fixture(scope="module")
async def jwks_url(signer: TestSigner) -> AsyncIterator[str]:
    async with served_jwks(signer) as url:
        yield url


@pytest.fixture
async def broker(stack: StackEnv, tmp_path: Path) -> AsyncIterator[OwnBroker]:
    """A broker of this test's own that it may stop and start again (its log is durable)."""
    own = OwnBroker(stack, tmp_path / "broker")
    (tmp_path / "broker").mkdir()
    await own.start()
    try:
        yield own
    finally:
        await own.stop()
        own.remove()


async def seed_files(settings: Settings, redis_namespace: str, root: Path) -> dict[str, bytes]:
    """Files on a local element, indexed by the projector: each id with its bytes."""
    contents = [secrets.token_bytes(300) for _ in range(DOWNLOADS)]
    records = [
        make_record(filename=f"ledger-{n}.txt", content=content, element_id=ELEMENT)
        for n, content in enumerate(contents)
    ]
    for record, content in zip(records, contents, strict=True):
        path = root / record.storage_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    registered = ElementRegistered(
        element_id=ELEMENT,
        mode=Mode.RW,
        backend=LocalBackend(root=str(root)),
        priority=1,
        capacity_bytes=10**9,
        free_bytes=10**9,
        worker="tests",
        started_at=BASE_TIME,
    )
    projector = ProjectorSettings(
        group_id=f"{redis_namespace}projection",
        cache_generation_key=f"{redis_namespace}query:generation",
    )
    async with running_projector(settings, projector), FactPublisher(settings) as facts:
        await facts.publish([registered, *(FileStored(file=r) for r in records)])

        async def indexed() -> bool:
            count = await fetchval(settings.database_url, "SELECT count(*) FROM files")
            return bool(count == DOWNLOADS)

        await wait_until(indexed, 60, message="files indexed")
    return {str(r.file_id): c for r, c in zip(records, contents, strict=True)}


def pending_audit_events(metrics: str) -> float:
    (line,) = (m for m in metrics.splitlines() if m.startswith("artstore_facade_audit_pending "))
    return float(line.split()[-1])


async def test_downloads_while_kafka_is_away_survive_a_killed_facade(
    stack: StackEnv,
    settings: Settings,
    signer: TestSigner,
    jwks_url: str,
    redis_namespace: str,
    broker: OwnBroker,
    tmp_path: Path,
) -> None:
    own = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    await create_topics(own.kafka_bootstrap, own.topic_names())
    await migrate(own.database_url)
    root = tmp_path / ELEMENT
    contents = await seed_files(own, redis_namespace, root)

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = facade_env(
        stack,
        own,
        signer=signer,
        jwks_url=jwks_url,
        redis_namespace=redis_namespace,
        port=port,
        ARTSTORE_FACADE_AUDIT_JOURNAL_DIR=str(tmp_path / "journal"),
    )
    reader = {"Authorization": f"Bearer {signer.issue(scopes={'files:read'}, client_id=READER)}"}
    auditor = signer.issue(scopes={"audit:read"}, client_id="sa_test_auditor_00000000")
    correlations = {file_id: f"journal-{uuid.uuid4().hex}" for file_id in contents}
    missing = str(uuid.uuid4())
    refused_correlation = f"journal-{uuid.uuid4().hex}"

    async with ServiceLauncher("facade", ["query", "facade"], base_url, tmp_path) as services:
        facade = await services.start(env)
        await facade.wait_ready()
        await broker.stop()  # Kafka is away from here on

        async with httpx.AsyncClient(base_url=base_url, timeout=10.0, headers=reader) as http:
            for file_id, correlation in correlations.items():
                got = await http.get(
                    f"/api/v1/files/{file_id}/content",
                    headers={"X-Correlation-ID": correlation},
                )
                assert got.status_code == 200, got.text
                assert got.content == contents[file_id]
            refused = await http.get(
                f"/api/v1/files/{missing}/content",
                headers={"X-Correlation-ID": refused_correlation},
            )
            assert refused.status_code == 404
            metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {auditor}"})
        # Answered, but not on the broker: every one waits in the journal.
        assert pending_audit_events(metrics.text) == DOWNLOADS + 1

        facade.process.send_signal(signal.SIGKILL)
        assert await facade.process.wait() == -signal.SIGKILL

        await broker.start()
        facade = await services.start(env)
        await facade.wait_ready()

        wanted = {*correlations.values(), refused_correlation}

        def all_arrived(got: list[Received]) -> bool:
            return wanted <= {event.envelope.correlation_id for _, event in got}

        received = await read_events(own, [Topic.AUDIT], until=all_arrived, deadline_s=60)
        assert await facade.terminate() == 0

    by_correlation = {event.envelope.correlation_id: event for _, event in received}
    for file_id, correlation in correlations.items():
        entry = by_correlation[correlation].data
        assert isinstance(entry, AuditRecorded)
        assert (entry.action, entry.subject, entry.actor, entry.outcome) == (
            "file.downloaded",
            file_id,
            READER,
            "success",
        )
        assert entry.details["bytes"] == len(contents[file_id])
    refusal = by_correlation[refused_correlation].data
    assert isinstance(refusal, AuditRecorded)
    assert (refusal.action, refusal.subject, refusal.actor, refusal.outcome) == (
        "file.download_refused",
        missing,
        READER,
        "failure",
    )
    # Once the broker has them all, the journal is emptied.
    assert not list((tmp_path / "journal").rglob("*.journal"))
