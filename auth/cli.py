"""``artstore auth ...``: run the auth service as an operator does."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from auth.settings import load_auth_settings
from base.serving import STARTUP_FAILURE, serve_until_stopped
from base.settings import configure_service_logging, load_settings

auth_app = typer.Typer(help="The auth service: service accounts, OAuth2 tokens, JWKS.")


@auth_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8080,
) -> None:
    """Run the auth service until SIGTERM or Ctrl-C.

    Applies migrations and, on first start, creates the bootstrap admin: its generated secret
    is printed once, on stdout (unless ARTSTORE_AUTH_BOOTSTRAP_ADMIN_SECRET is set).
    """
    from auth.app import create_app

    try:
        settings = load_settings()
        auth_settings = load_auth_settings()
    except ValidationError as exc:
        typer.echo(f"invalid setting: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_service_logging(settings, "artstore-auth")
    # uvicorn's loggers go through ours (stderr); stdout is for the secret
    started = serve_until_stopped(
        create_app(settings, auth_settings),
        host=host,
        port=port,
        graceful_timeout_s=settings.graceful_timeout_s,
    )
    if not started:
        raise typer.Exit(STARTUP_FAILURE)
