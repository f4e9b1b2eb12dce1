"""Each projected partition counts the offsets it went past without a record (a gap the broker
proved: retention, or offsets it never serves), so applied records plus gaps add up to its
position.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE projection_offsets ADD COLUMN IF NOT EXISTS gap_offsets bigint NOT NULL "
        "DEFAULT 0"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE projection_offsets DROP COLUMN IF EXISTS gap_offsets")
