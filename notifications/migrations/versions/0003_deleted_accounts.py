"""Accounts the auth service deleted: they register no more webhooks.

Revision ID: 0003_deleted_accounts
Revises: 0002_held_accounts
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0003_deleted_accounts"
down_revision = "0002_held_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE notification_deleted_accounts (
            client_id text PRIMARY KEY,
            deleted_at timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS notification_deleted_accounts")
