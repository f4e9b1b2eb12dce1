"""Alembic environment of the auth schema; run through :func:`auth.db.migrate`."""

from __future__ import annotations

from alembic import context

from auth.db import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run auth migrations with auth.db.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
