"""``artstore query ...``: run the projector, replay it, check it against an element."""

from __future__ import annotations

import typer

from artstore.logging import configure_logging
from artstore.settings import load_settings
from consumers.settings import ProjectorSettings

query_app = typer.Typer(help="The query projection: projector, replay, index check.")


@query_app.callback()
def _group() -> None:
    """The query projection: projector, facade, replay, index check."""


@query_app.command("projector")
def projector() -> None:
    """Run the live projector until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from consumers.service import run_projector_process

    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    run_projector_process(settings, ProjectorSettings())
