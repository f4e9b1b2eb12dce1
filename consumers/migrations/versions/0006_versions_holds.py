"""Versions and legal holds: each file's document and version number, its retention date and
its legal hold, and an index to find a document's versions (and whether a version is the
latest) quickly. Rows from before are their own documents, version 1.

Revision ID: 0006_versions_holds
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0006_versions_holds"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE files ADD COLUMN IF NOT EXISTS document_id uuid, "
        "ADD COLUMN IF NOT EXISTS document_version integer, "
        "ADD COLUMN IF NOT EXISTS retain_until timestamptz, "
        "ADD COLUMN IF NOT EXISTS legal_hold jsonb"
    )
    op.execute(
        "UPDATE files SET document_id = file_id, document_version = 1 WHERE document_id IS NULL"
    )
    op.execute("ALTER TABLE files ALTER COLUMN document_id SET NOT NULL")
    op.execute("ALTER TABLE files ALTER COLUMN document_version SET NOT NULL")
    op.execute("CREATE INDEX IF NOT EXISTS files_document ON files (document_id, document_version)")
    op.execute(
        "CREATE INDEX IF NOT EXISTS files_legal_hold ON files (file_id) "
        "WHERE legal_hold IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS files_legal_hold")
    op.execute("DROP INDEX IF EXISTS files_document")
    op.execute(
        "ALTER TABLE files DROP COLUMN IF EXISTS legal_hold, "
        "DROP COLUMN IF EXISTS retain_until, DROP COLUMN IF EXISTS document_version, "
        "DROP COLUMN IF EXISTS document_id"
    )
