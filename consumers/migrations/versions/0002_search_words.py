"""Index and query text share one normalisation: punctuation inside a word splits it.

The parser keeps ``aquarium.txt``, ``zeppelin-log`` or ``annual_report.pdf`` as one token (a file
name, a hyphenated word), so a search for the name as typed found nothing once the filename was
indexed as separate words. ``search_text`` turns each run of punctuation between two word
characters into a comma, which the parser always treats as a separator; in a query,
``websearch_to_tsquery`` still sees one chunk and makes it a phrase (``aquarium <-> txt``), so
quotes, ``-exclusion`` (of the whole name) and ``or`` keep their meaning. The facade calls the same
function on the query.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEARCH_CONFIG = "russian"

# Word characters are "neither space nor punctuation", so Cyrillic counts in any locale. The
# function lives in ``public`` whatever schema is migrated: a replay moves tables between schemas
# and drops its own, which would otherwise drop the live search_vector with it.
_SEARCH_TEXT = r"""
CREATE OR REPLACE FUNCTION public.search_text(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN regexp_replace(
    value, '([^[:space:][:punct:]])[[:punct:]]+(?=[^[:space:][:punct:]])', '\1,', 'g'
)
"""


def _vector(normalise: str) -> str:
    parts = (
        (normalise.format("original_filename"), "A"),
        (normalise.format("coalesce(description, '')"), "B"),
        (normalise.format("search_extra"), "C"),
    )
    return " || ".join(
        f"setweight(to_tsvector('{SEARCH_CONFIG}'::regconfig, {expr}), '{weight}')"
        for expr, weight in parts
    )


def _rebuild_search_vector(vector: str) -> None:
    op.execute("DROP INDEX files_search_vector")
    op.execute("ALTER TABLE files DROP COLUMN search_vector")
    op.execute(
        f"ALTER TABLE files ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector}) STORED"
    )
    op.execute("CREATE INDEX files_search_vector ON files USING gin (search_vector)")


def upgrade() -> None:
    op.execute(_SEARCH_TEXT)
    _rebuild_search_vector(_vector("public.search_text({})"))


def downgrade() -> None:
    old = _vector("{}").replace(
        "original_filename",
        r"regexp_replace(original_filename, '[[:punct:][:space:]]+', ' ', 'g')",
        1,
    )
    _rebuild_search_vector(old)  # public.search_text stays: other schemas may still use it
