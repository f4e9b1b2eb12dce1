"""PostgreSQL schema of the auth service, the engine, and running its Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

VERSION_TABLE = "alembic_version_auth"
MIGRATIONS = Path(__file__).parent / "migrations"

metadata = MetaData()

accounts = Table(
    "service_accounts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("client_id", Text, nullable=False, unique=True),
    Column("secret_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("is_system", Boolean, nullable=False, server_default=text("false")),
    Column("rate_limit", Integer, nullable=False),
    Column("secret_expires_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Index(
        "service_accounts_live_name",
        "name",
        unique=True,
        postgresql_where=text("status <> 'deleted'"),
    ),
)

account_secrets = Table(
    "account_secrets",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "account_id",
        UUID(as_uuid=True),
        ForeignKey("service_accounts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # NULL while the secret is current; set when it is rotated out (now + grace window).
    Column("valid_until", DateTime(timezone=True)),
    Index("account_secrets_by_account", "account_id", "id"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", Text, primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True)),
    Column("publish_until", DateTime(timezone=True)),
)

outbox = Table(
    "auth_outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Index("auth_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
)


def create_engine(database_url: str) -> AsyncEngine:
    """An asyncpg engine with a pool sized for one service replica."""
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def alembic_config() -> Config:
    """The Alembic configuration, built in code so it works from an installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the auth schema to the newest revision (safe to run from every replica)."""
    async with engine.begin() as conn:
        # Two replicas starting together must not both create tables.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('artstore.auth.migrate'))"))
        await conn.run_sync(_upgrade)
