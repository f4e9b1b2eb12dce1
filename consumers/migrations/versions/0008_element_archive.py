"""Elements: how far an ``ar`` element's move to its cold backend has come, from its heartbeats.

Revision ID: 0008_element_archive
Revises: 0007_cold_restore
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008_element_archive"
down_revision = "0007_cold_restore"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE elements ADD COLUMN archive jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE elements DROP COLUMN IF EXISTS archive")
