"""``artstore dev --purge``: a data dir's deployment leaves nothing behind on shared servers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest
import redis

from artstore.dev.services import Instance, Layout, env_file_text
from artstore.dev.services import Urls as DevUrls
from artstore.stack import StackEnv, ensure_database, maintenance_dsn, with_database
from tests.dev_ports import free_dev_ports

pytestmark = [pytest.mark.embedded_broker, pytest.mark.postgres, pytest.mark.redis]


async def _database_exists(url: str, name: str) -> bool:
    conn = await asyncpg.connect(maintenance_dsn(url), timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def purge(data_dir: Path) -> tuple[int, str, str]:
    """``artstore dev --purge --data-dir DIR`` as a user runs it: exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "artstore",
        "dev",
        "--purge",
        "--data-dir",
        str(data_dir),
        env={k: v for k, v in os.environ.items() if not k.startswith("ARTSTORE_")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_purge_drops_the_database_the_redis_keys_and_the_data_dir(
    stack: StackEnv, tmp_path: Path
) -> None:
    layout = Layout(tmp_path / "artstore-data")
    instance = Instance.new(port_base=free_dev_ports(), ephemeral=False)
    layout.save_instance(instance)
    database_url = with_database(stack.database_url, instance.database)
    shared = {"ARTSTORE_DATABASE_URL": database_url, "ARTSTORE_REDIS_URL": stack.redis_url}
    layout.env_file.write_text(env_file_text(shared, DevUrls("http://a", "http://f"), None))
    ensure_database(database_url)
    keys = redis.Redis.from_url(stack.redis_url)
    keys.set(f"{instance.redis_prefix}auth:limit", "1")
    keys.set(f"{instance.redis_prefix}query:generation", "7")
    (layout.logs).mkdir(parents=True)
    (layout.logs / "auth.log").write_text("a log line\n")

    code, out, err = await purge(layout.root)
    assert code == 0, err
    assert f"removed database {instance.database}" in out
    assert f"removed 2 Redis key(s) {instance.redis_prefix}*" in out
    assert not await _database_exists(stack.database_url, instance.database)
    assert list(keys.scan_iter(f"{instance.redis_prefix}*")) == []
    assert not layout.root.exists()
    keys.close()


async def test_purge_refuses_a_directory_without_a_deployment(tmp_path: Path) -> None:
    code, _, err = await purge(tmp_path)
    assert code == 2
    assert "holds no artstore dev deployment" in err
