"""Indexes the operator's console pages through: recent uploads, and the audit log's filters.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Recent uploads newest first, keyset-paginated, and the last hour's rates.
    op.execute("CREATE INDEX IF NOT EXISTS uploads_status_at ON uploads (status_at, file_id)")
    op.execute("CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, occurred_at)")
    op.execute("CREATE INDEX IF NOT EXISTS audit_log_subject ON audit_log (subject)")


def downgrade() -> None:
    for index in ("audit_log_subject", "audit_log_action", "uploads_status_at"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
