"""The query projection: files (full text), uploads, elements, audit_log, projection_offsets.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Filenames are split on punctuation so "annual_report-2024.pdf" indexes "annual", "report",
# "2024" and "pdf"; the parser would otherwise keep it as one host/file token.
_FILENAME_WORDS = r"regexp_replace(original_filename, '[[:punct:][:space:]]+', ' ', 'g')"


#: PostgreSQL's ``russian`` configuration stems Cyrillic words with the Russian Snowball stemmer
#: and ASCII words with the English one (with English stop words): one configuration gives both
#: languages their stemming. Indexing with ``english`` as well cost 30 % of write throughput
#: (measured, bench/bench_projection.py) and added only unstemmed Cyrillic forms. Documents and
#: queries use the same single configuration, so exclusions ("-word") stay exact.
SEARCH_CONFIG = "russian"


def _weighted(expr: str, weight: str) -> str:
    return f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, {expr}), '{weight}')"


SEARCH_VECTOR = " || ".join(
    (
        _weighted(_FILENAME_WORDS, "A"),
        _weighted("coalesce(description, '')", "B"),
        _weighted("search_extra", "C"),
    )
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    op.execute(
        f"""
        CREATE TABLE files (
            file_id uuid PRIMARY KEY,
            element_id text NOT NULL,
            original_filename text NOT NULL,
            storage_filename text NOT NULL,
            storage_path text NOT NULL,
            extension text NOT NULL,
            file_size bigint NOT NULL,
            content_type text NOT NULL,
            checksum text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            created_by_id text NOT NULL,
            created_by_username text NOT NULL,
            created_by_fullname text,
            description text,
            version integer NOT NULL,
            retention_policy text NOT NULL,
            ttl_expires_at timestamptz,
            tags text[] NOT NULL DEFAULT '{{}}',
            metadata jsonb NOT NULL DEFAULT '{{}}',
            custom_attributes jsonb NOT NULL DEFAULT '{{}}',
            language text NOT NULL DEFAULT 'english',
            search_extra text NOT NULL DEFAULT '',
            deleted_at timestamptz,
            deleted_by text,
            deletion_reason text,
            fixity_failure jsonb,
            last_rejection jsonb,
            search_vector tsvector GENERATED ALWAYS AS ({SEARCH_VECTOR}) STORED
        )
        """
    )
    op.execute("CREATE INDEX files_search_vector ON files USING gin (search_vector)")
    op.execute(
        "CREATE INDEX files_custom_attributes ON files USING gin (custom_attributes jsonb_path_ops)"
    )
    op.execute("CREATE INDEX files_tags ON files USING gin (tags)")
    op.execute(
        "CREATE INDEX files_filename_trgm ON files USING gin "
        "(lower(original_filename) public.gin_trgm_ops)"
    )
    op.execute("CREATE INDEX files_created ON files (created_at, file_id)")
    op.execute("CREATE INDEX files_size ON files (file_size, file_id)")
    op.execute("CREATE INDEX files_filename ON files (original_filename, file_id)")
    op.execute("CREATE INDEX files_element ON files (element_id)")
    op.execute("CREATE INDEX files_username ON files (created_by_username)")
    op.execute("CREATE INDEX files_extension ON files (extension)")

    op.execute(
        """
        CREATE TABLE uploads (
            file_id uuid PRIMARY KEY,
            status text NOT NULL,
            status_rank smallint NOT NULL,
            status_at timestamptz NOT NULL,
            reason text,
            detail text,
            element_id text,
            original_filename text,
            content_type text,
            file_size bigint,
            checksum text,
            retention_policy text,
            requested_at timestamptz,
            correlation_id text
        )
        """
    )
    op.execute(
        """
        CREATE TABLE elements (
            element_id text PRIMARY KEY,
            mode text,
            mode_as_of timestamptz,
            backend jsonb,
            priority integer,
            retention_days integer,
            worker text,
            started_at timestamptz,
            capacity_bytes bigint,
            used_bytes bigint,
            free_bytes bigint,
            file_count bigint,
            capacity_status text,
            accepting_uploads boolean,
            capacity_as_of timestamptz,
            last_heartbeat_at timestamptz,
            full_at timestamptz,
            last_mode_change jsonb,
            last_mode_rejection jsonb
        )
        """
    )
    op.execute(
        """
        CREATE TABLE audit_log (
            event_id text PRIMARY KEY,
            occurred_at timestamptz NOT NULL,
            action text NOT NULL,
            actor text,
            subject text NOT NULL,
            outcome text NOT NULL,
            reason text,
            details jsonb NOT NULL DEFAULT '{}',
            source text NOT NULL,
            correlation_id text NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX audit_log_occurred ON audit_log (occurred_at, event_id)")
    op.execute("CREATE INDEX audit_log_actor ON audit_log (actor)")
    op.execute(
        """
        CREATE TABLE projection_offsets (
            topic text NOT NULL,
            partition integer NOT NULL,
            next_offset bigint,
            events_applied bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (topic, partition)
        )
        """
    )


def downgrade() -> None:
    for table in ("projection_offsets", "audit_log", "elements", "uploads", "files"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
