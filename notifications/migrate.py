"""Programmatic Alembic migrations of the notifications tables (idempotent, one at a time).

These tables are not a projection: a webhook is an account's registration, known nowhere
else, and a delivery's log is its only record. So they have their own migration tree and
version table (``notifications_alembic_version``) in the live schema, apart from the
projection's, which a replay rebuilds from the topics and swaps out.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

_HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """The notifications' Alembic configuration (migrations shipped inside the package)."""
    config = Config()
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(database_url: str) -> None:
    """Bring the notifications tables to the newest revision (the facade and the dispatcher
    both call it at start; an advisory lock makes concurrent starts wait for each other)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('artstore.notifications'))")
            )
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()
