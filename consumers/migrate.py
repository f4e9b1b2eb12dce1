"""Programmatic Alembic migrations of the projection, into the live schema or a replay schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from consumers.sql import quote_ident

_HERE = Path(__file__).resolve().parent
PROJECTION_TABLES = (
    "files",
    "uploads",
    "elements",
    "audit_log",
    "projection_offsets",
    "fixity_passes",
    "fixity_findings",
    "restores",
)


def alembic_config() -> Config:
    """The projection's Alembic configuration (migrations shipped inside the package)."""
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


def _upgrade(connection: Connection, schema: str) -> None:
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"))
    # Unqualified names in the migrations land in the first schema of the path.
    connection.execute(text(f"SET LOCAL search_path TO {quote_ident(schema)}, public"))
    config = alembic_config()
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    command.upgrade(config, "head")


async def migrate(database_url: str, *, schema: str = "public") -> None:
    """Bring the projection tables in ``schema`` to the newest revision (idempotent)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            # Two processes migrating at once would both try to create the tables.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('artstore.projection'))")
            )
            await conn.run_sync(_upgrade, schema)
    finally:
        await engine.dispose()
