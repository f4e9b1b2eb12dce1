"""Restores: one row per restore request, its status only climbing
(queued -> in_progress -> restored -> expired | failed).

Revision ID: 0007_cold_restore
Revises: 0006_versions_holds
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007_cold_restore"
down_revision = "0006_versions_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE restores (
            restore_id uuid PRIMARY KEY,
            file_id uuid NOT NULL,
            element_id text,
            requested_by text,
            status text NOT NULL,
            status_rank smallint NOT NULL,
            status_at timestamptz NOT NULL,
            reason text,
            detail text,
            restore_element_id text,
            storage_path text,
            checksum text,
            expires_at timestamptz,
            warned_at timestamptz,
            requested_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX restores_file ON restores (file_id, status_rank)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS restores")
