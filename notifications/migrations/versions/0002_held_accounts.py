"""Accounts whose deliveries are held while they are suspended.

Revision ID: 0002_held_accounts
Revises: 0001_webhooks
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0002_held_accounts"
down_revision = "0001_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE notification_held_accounts (
            client_id text PRIMARY KEY,
            held_since timestamptz NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS notification_held_accounts")
