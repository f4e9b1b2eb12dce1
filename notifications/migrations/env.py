"""Alembic environment of the notifications tables; run through
:func:`notifications.migrate.migrate`."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the notifications migrations through notifications.migrate.migrate")

context.configure(
    connection=connection,
    target_metadata=None,
    version_table="notifications_alembic_version",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
