"""Revoked tokens on Kafka: a worker refuses a command recorded after its token was revoked,
and applies one recorded before, whenever it processes them (a backlog read after the
revocation). The deny-list is the auth service's, in the stack's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from redis.asyncio import Redis

from auth import RedisDenyList
from base.settings import Settings
from events import FileStored, Mode, RejectionReason, UploadRejected
from storage_workers.service import StorageService
from tests.storage_support import FactLog, Producer, worker_config

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

ELEMENT = "se-revoked"


@pytest.fixture(scope="module")
async def deny_list(settings: Settings, redis_namespace: str) -> AsyncIterator[RedisDenyList]:
    redis = Redis.from_url(settings.redis_url)
    yield RedisDenyList(redis, prefix=f"{redis_namespace}auth:")
    await redis.aclose()


def worker(settings: Settings, jwks_file: Path, redis_namespace: str) -> StorageService:
    config = worker_config(
        ELEMENT,
        mode=Mode.RW,
        root=settings.data_dir / ELEMENT,
        jwks_file=jwks_file,
        revocation_prefix=f"{redis_namespace}auth:",
    )
    return StorageService(settings, config)


async def revoke(deny_list: RedisDenyList, token: str) -> datetime:
    claims = jwt.decode(token, options={"verify_signature": False})
    now = datetime.now(UTC)
    await deny_list.revoke(
        claims["jti"], expires_at=datetime.fromtimestamp(claims["exp"], UTC), now=now
    )
    return now


async def test_a_backlog_is_judged_at_each_commands_record_time(
    settings: Settings,
    jwks_file: Path,
    redis_namespace: str,
    producer: Producer,
    facts: FactLog,
    deny_list: RedisDenyList,
) -> None:
    token = producer.token()
    before = producer.upload(b"recorded before the revocation")
    await producer.send(before, token=token)
    await revoke(deny_list, token)
    after = producer.upload(b"recorded after the revocation")
    await producer.send(after, token=token)

    # The worker starts only now: it reads both commands after the revocation.
    service = worker(settings, jwks_file, redis_namespace)
    await service.start()
    try:
        await facts.wait(FileStored, file__file_id=before.file_id)
        rejected = await facts.wait(UploadRejected, file_id=after.file_id)
        assert rejected.reason is RejectionReason.INVALID_TOKEN
        assert "revoked" in rejected.detail
        assert not facts.of(FileStored, file__file_id=after.file_id)

        # A running worker refuses it from the moment the revocation returns.
        live = producer.token()
        await revoke(deny_list, live)
        now_refused = producer.upload(b"sent with a token revoked while the worker runs")
        await producer.send(now_refused, token=live)
        refused = await facts.wait(UploadRejected, file_id=now_refused.file_id)
        assert refused.reason is RejectionReason.INVALID_TOKEN
        assert not facts.of(FileStored, file__file_id=now_refused.file_id)
    finally:
        await service.stop()
