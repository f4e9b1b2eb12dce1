"""``python -m consumers projector`` runs the projector (as ``artstore query projector`` does)."""

from consumers.cli import query_app

query_app()
