"""``artstore query facade``: serve the HTTP facade."""

from __future__ import annotations

import typer

from base.serving import STARTUP_FAILURE
from base.settings import configure_service_logging, load_settings


def serve_facade() -> None:
    """Serve the HTTP facade (ARTSTORE_FACADE_HOST/PORT) until interrupted."""
    from facade.app import serve
    from facade.settings import FacadeSettings

    settings = load_settings()
    configure_service_logging(settings, "artstore-facade")
    if not serve(settings, FacadeSettings()):
        raise typer.Exit(STARTUP_FAILURE)
