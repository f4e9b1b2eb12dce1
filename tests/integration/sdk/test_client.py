"""The producer SDK against the whole pipeline: auth, facade, projector and an rw element."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from base.settings import Settings
from producers import (
    ArtStoreClient,
    ArtStoreSyncClient,
    BrokerUnavailable,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
    UploadRequest,
)
from tests.helpers import wait_until
from tests.pipeline import Pipeline, free_port, running_pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


@pytest.fixture(scope="module")
async def pipeline(settings: Settings, redis_namespace: str) -> AsyncIterator[Pipeline]:
    async with running_pipeline(settings, redis_namespace) as running:
        yield running


@pytest.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[ArtStoreClient]:
    async with ArtStoreClient(pipeline.client_settings()) as c:
        yield c


class FakeClock:
    """The SDK's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_upload_from_s3_staging_is_stored_searchable_and_described(
    client: ArtStoreClient, pipeline: Pipeline
) -> None:
    content = os.urandom(300_000)
    handle = await client.upload(
        io.BytesIO(content),
        filename="quarterly-ledger.bin",
        description="quarterly ledger export",
        tags=["finance", "q3"],
        custom_attributes={"department": "accounts"},
    )
    assert handle.checksum == hashlib.sha256(content).hexdigest()
    stored = await handle.wait(timeout=60)
    assert stored.file_id == handle.file_id
    assert stored.element_id == pipeline.element_id
    assert stored.storage_path.endswith(f"{handle.file_id}.bin")
    assert stored.checksum == handle.checksum
    meta = await client.get_metadata(handle.file_id)
    assert meta["tags"] == ["finance", "q3"]
    assert meta["custom_attributes"] == {"department": "accounts"}
    page = await client.search("ledger", tag=["finance"])
    assert [item["file_id"] for item in page.items] == [str(handle.file_id)]


async def test_many_files_from_a_staging_directory_are_published_together(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    files = []
    for i in range(5):
        path = tmp_path / f"note-{i}.txt"
        path.write_text(f"note number {i}\n" * 100)
        files.append(path)
    settings = pipeline.client_settings(staging="directory")
    async with ArtStoreClient(settings) as client:
        seen: list[int] = []
        handles = await client.upload_many(
            [UploadRequest(source=p) for p in files], progress=lambda _r, n: seen.append(n)
        )
        assert sum(seen) == sum(p.stat().st_size for p in files)
        stored = await asyncio.gather(*(h.wait(60) for h in handles))
    assert {s.original_filename for s in stored} == {p.name for p in files}
    # The worker removes staged bytes once the file is stored and announced.
    await wait_until(
        lambda: not any(f.is_file() for f in (pipeline.settings.data_dir / "staging").rglob("*")),
        30,
        message="staging emptied",
    )


async def test_token_is_cached_and_refreshed_at_80_percent_of_its_lifetime(
    pipeline: Pipeline,
) -> None:
    clock = FakeClock()
    async with ArtStoreClient(pipeline.client_settings(), clock=clock) as client:
        first = await client.token()
        assert await client.token() == first
        await client.elements()
        assert client.tokens.fetched == 1
        lifetime = 15 * 60  # the auth service's default TTL
        clock.now += lifetime * 0.79
        assert await client.token() == first
        clock.now += lifetime * 0.02
        second = await client.token()
        assert second != first
        assert client.tokens.fetched == 2
        await client.elements()  # the new token works
        assert client.tokens.fetched == 2


async def test_a_refused_token_is_replaced_once_and_the_call_succeeds(
    client: ArtStoreClient,
) -> None:
    await client.token()
    client.tokens._current = client.tokens._current.__class__(  # type: ignore[union-attr]
        value="not-a-jwt", expires_at=1e12, refresh_at=1e12, scope=""
    )
    assert isinstance(await client.elements(), list)
    assert client.tokens.fetched == 2


async def test_rejection_reason_from_the_element_surfaces_as_rejected(
    pipeline: Pipeline,
) -> None:
    # A readonly account may read but not write: the element's worker refuses the command.
    reader = await pipeline.create_account(f"reader-{uuid.uuid4().hex[:6]}", role="readonly")
    async with ArtStoreClient(reader) as client:
        handle = await client.upload(b"not allowed", filename="denied.txt")
        with pytest.raises(Rejected) as caught:
            await handle.wait(timeout=60)
    assert caught.value.reason == "insufficient_scope"
    assert "files:write" in caught.value.detail


async def test_token_rate_limit_raises_rate_limited_with_retry_after(
    pipeline: Pipeline,
) -> None:
    limited = await pipeline.create_account(f"limited-{uuid.uuid4().hex[:6]}", rate_limit=2)
    async with ArtStoreClient(limited) as client:
        await client.tokens.token(force=True)
        await client.tokens.token(force=True)
        with pytest.raises(RateLimited) as caught:
            await client.tokens.token(force=True)
    assert caught.value.retry_after >= 1
    assert caught.value.status == 429


async def test_interrupted_download_resumes_with_range_and_verifies_sha256(
    client: ArtStoreClient, tmp_path: Path
) -> None:
    content = os.urandom(3 * 1024 * 1024 + 123)
    stored = await (await client.upload(content, filename="big.bin")).wait(60)
    target = tmp_path / "big.bin"

    class Interrupted(Exception):
        pass

    def stop_after_a_megabyte(done: int, total: int) -> None:
        if done >= 1024 * 1024:
            raise Interrupted

    with pytest.raises(Interrupted):
        await client.download(stored.file_id, target, progress=stop_after_a_megabyte)
    part = tmp_path / "big.bin.part"
    kept = part.stat().st_size
    assert 1024 * 1024 <= kept < len(content)
    assert not target.exists()

    result = await client.download(stored.file_id, target)
    assert result.resumed_from == kept
    assert result.bytes_received == len(content) - kept
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert target.read_bytes() == content
    assert not part.exists()


async def test_download_to_a_stream(client: ArtStoreClient) -> None:
    content = b"streamed content\n" * 1000
    stored = await (await client.upload(content, filename="stream.txt")).wait(60)
    sink = io.BytesIO()
    result = await client.download(stored.file_id, sink)
    assert sink.getvalue() == content
    assert result.path is None


async def test_unknown_file_is_not_found(client: ArtStoreClient) -> None:
    with pytest.raises(NotFound):
        await client.get_metadata(uuid.uuid4())


async def test_wait_times_out_for_an_upload_nobody_knows(client: ArtStoreClient) -> None:
    with pytest.raises(Timeout, match="still"):
        await client.handle(uuid.uuid4()).wait(timeout=0.5)


async def test_metadata_update_goes_through_the_facade(client: ArtStoreClient) -> None:
    stored = await (await client.upload(b"v1", filename="versioned.txt")).wait(60)
    await client.update_metadata(stored.file_id, description="second version", tags=["v2"])

    async def updated() -> bool:
        meta = await client.get_metadata(stored.file_id)
        return bool(meta["version"] == 2 and meta["tags"] == ["v2"])

    await wait_until(updated, 30, interval=0.2)


async def test_sync_client_uploads_and_waits(pipeline: Pipeline) -> None:
    def use_sync() -> str:
        with ArtStoreSyncClient(pipeline.client_settings()) as client:
            handle = client.upload(b"sync bytes", filename="sync.txt", tags=["sync"])
            stored = handle.wait(60)
            return stored.original_filename

    assert await asyncio.to_thread(use_sync) == "sync.txt"


async def test_the_documented_example_runs_with_only_the_env_file_artstore_dev_prints(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    document = tmp_path / "example-report.txt"
    document.write_text("an example report\n" * 50)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "producers.examples.upload_and_wait",
        str(document),
        env=pipeline.env_from_file(tmp_path / "artstore.env"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode() + out.decode()
    assert f"stored on {pipeline.element_id}" in out.decode()
    assert "sha256 verified" in out.decode()


async def test_unreachable_s3_staging_is_unavailable_naming_the_endpoint(
    pipeline: Pipeline,
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    async with ArtStoreClient(pipeline.client_settings(s3_endpoint=closed)) as client:
        with pytest.raises(Unavailable) as caught:
            await client.upload(b"bytes nobody can stage", filename="lost.txt")
    assert closed in str(caught.value)
    assert "Connection refused" in str(caught.value)


async def test_unwritable_staging_directory_is_unavailable_naming_the_directory(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the staging directory should be")
    settings = pipeline.client_settings(staging="directory", staging_dir=blocker / "staging")
    async with ArtStoreClient(settings) as client:
        with pytest.raises(Unavailable, match="not-a-directory"):
            await client.upload(b"bytes", filename="lost.txt")


async def test_a_broker_that_never_answers_is_a_clear_error_not_a_hang(
    pipeline: Pipeline,
) -> None:
    """A listener that accepts connections and never replies: what a broker restarting under
    load looks like to a client. The upload fails with BrokerUnavailable naming the broker."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    settings = pipeline.client_settings(kafka_bootstrap=f"127.0.0.1:{port}", publish_timeout_s=3)
    try:
        async with ArtStoreClient(settings) as client:
            with pytest.raises(BrokerUnavailable) as caught:
                await client.upload_many(
                    [UploadRequest(source=io.BytesIO(b"never sent"), filename="silent.txt")],
                    check_placement=False,
                )
        assert f"127.0.0.1:{port}" in str(caught.value)
    finally:
        for writer in connections:
            writer.close()
        silent.close()
        await silent.wait_closed()
