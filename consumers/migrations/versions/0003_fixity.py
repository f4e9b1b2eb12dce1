"""Fixity: each file's last check, each element's last full pass, every pass and finding.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # {status: sound|failed|unreadable, checked_at, pass_id, kind?, detail?}
    op.execute("ALTER TABLE files ADD COLUMN fixity jsonb")
    op.execute("CREATE INDEX files_fixity_status ON files ((fixity ->> 'status'))")
    op.execute("ALTER TABLE elements ADD COLUMN fixity_last_full_pass jsonb")
    op.execute(
        """
        CREATE TABLE fixity_passes (
            pass_id text PRIMARY KEY,
            element_id text NOT NULL,
            scope text NOT NULL,
            file_id uuid,
            complete boolean NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            checked bigint NOT NULL,
            sound bigint NOT NULL,
            failed bigint NOT NULL,
            unreadable bigint NOT NULL,
            bytes_checked bigint NOT NULL,
            findings jsonb NOT NULL,
            fact jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX fixity_passes_element ON fixity_passes (element_id, finished_at)")
    op.execute(
        """
        CREATE TABLE fixity_findings (
            event_id text PRIMARY KEY,
            element_id text NOT NULL,
            file_id uuid,
            storage_path text NOT NULL,
            kind text NOT NULL,
            pass_id text,
            detected_at timestamptz NOT NULL,
            fact jsonb NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX fixity_findings_pass ON fixity_findings (pass_id)")
    op.execute("CREATE INDEX fixity_findings_element ON fixity_findings (element_id, detected_at)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS fixity_findings")
    op.execute("DROP TABLE IF EXISTS fixity_passes")
    op.execute("ALTER TABLE elements DROP COLUMN IF EXISTS fixity_last_full_pass")
    op.execute("ALTER TABLE files DROP COLUMN IF EXISTS fixity")
