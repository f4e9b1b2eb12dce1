"""Webhooks, their deliveries (the durable queue), every attempt, the dispatcher's positions in
the fact topics, and the audit outbox of registrations.

Revision ID: 0001_webhooks
Revises:
Create Date: 2027-01-10
"""

from __future__ import annotations

from alembic import op

revision = "0001_webhooks"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhooks (
            webhook_id uuid PRIMARY KEY,
            client_id text NOT NULL,
            url text NOT NULL,
            kinds text[] NOT NULL,
            description text NOT NULL DEFAULT '',
            secret_key_id text NOT NULL,
            secret_sealed bytea NOT NULL,
            created_at timestamptz NOT NULL,
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX webhooks_live_by_client ON webhooks (client_id, created_at) "
        "WHERE deleted_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            delivery_id uuid PRIMARY KEY,
            webhook_id uuid NOT NULL REFERENCES webhooks (webhook_id),
            kind text NOT NULL,
            event_id text NOT NULL,
            event_type text NOT NULL,
            subject text NOT NULL,
            body bytea NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz,
            leased_until timestamptz,
            created_at timestamptz NOT NULL,
            finished_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
        "WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries "
        "(webhook_id, created_at DESC)"
    )
    op.execute(
        """
        CREATE TABLE webhook_attempts (
            delivery_id uuid NOT NULL REFERENCES webhook_deliveries (delivery_id)
                ON DELETE CASCADE,
            attempt integer NOT NULL,
            attempted_at timestamptz NOT NULL,
            duration_ms integer NOT NULL,
            status_code integer,
            error text,
            PRIMARY KEY (delivery_id, attempt)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notification_offsets (
            topic text NOT NULL,
            partition integer NOT NULL,
            next_offset bigint NOT NULL,
            PRIMARY KEY (topic, partition)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE notification_audit_outbox (
            id bigserial PRIMARY KEY,
            key bytea NOT NULL,
            value bytea NOT NULL,
            headers jsonb NOT NULL,
            created_at timestamptz NOT NULL,
            published_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX notification_audit_outbox_pending ON notification_audit_outbox (id) "
        "WHERE published_at IS NULL"
    )


def downgrade() -> None:
    for table in (
        "notification_audit_outbox",
        "notification_offsets",
        "webhook_attempts",
        "webhook_deliveries",
        "webhooks",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
