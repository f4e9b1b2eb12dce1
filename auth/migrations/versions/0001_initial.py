"""Service accounts, their secret history, signing keys and the audit outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_accounts",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("client_id", sa.Text, nullable=False, unique=True),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("is_system", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("rate_limit", sa.Integer, nullable=False),
        sa.Column("secret_expires_at", TZ, nullable=False),
        sa.Column("last_used_at", TZ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("deleted_at", TZ),
        sa.CheckConstraint(
            "role IN ('admin', 'user', 'auditor', 'readonly')", name="service_accounts_role"
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'expired', 'deleted')",
            name="service_accounts_status",
        ),
        sa.CheckConstraint("rate_limit > 0", name="service_accounts_rate_limit"),
    )
    op.create_index(
        "service_accounts_live_name",
        "service_accounts",
        ["name"],
        unique=True,
        postgresql_where=sa.text("status <> 'deleted'"),
    )
    op.create_table(
        "account_secrets",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id",
            UUID(as_uuid=True),
            sa.ForeignKey("service_accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("valid_until", TZ),
    )
    op.create_index("account_secrets_by_account", "account_secrets", ["account_id", "id"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.Text, primary_key=True),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("public_jwk", JSONB, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("retired_at", TZ),
        sa.Column("publish_until", TZ),
    )
    op.create_table(
        "auth_outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("published_at", TZ),
    )
    op.create_index(
        "auth_outbox_pending",
        "auth_outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("auth_outbox")
    op.drop_table("signing_keys")
    op.drop_table("account_secrets")
    op.drop_table("service_accounts")
