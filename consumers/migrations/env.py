"""Alembic environment of the query projection.

Runs only with a connection handed over by :func:`consumers.migrate.migrate`, which has already
set ``search_path`` to the target schema, so the same migrations build the live projection and
the fresh tables a replay fills.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
schema = context.config.attributes.get("schema", "public")
if connection is None:
    raise RuntimeError(
        "run the projection's migrations through consumers.migrate.migrate(database_url)"
    )

context.configure(
    connection=connection,
    target_metadata=None,
    version_table="projection_alembic_version",
    version_table_schema=schema,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
