"""``artstore auth ...``: run the auth service as an operator does."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from artstore.logging import configure_logging
from artstore.settings import load_settings
from auth.settings import load_auth_settings

auth_app = typer.Typer(help="The auth service: service accounts, OAuth2 tokens, JWKS.")

#: uvicorn's exit status when the app failed to start (database unreachable, bad migration...).
STARTUP_FAILURE = 3


class _Server(uvicorn.Server):
    """A uvicorn server for which SIGTERM/SIGINT mean "stop": drain, shut down, exit 0.

    uvicorn re-raises the signal once it has shut down, so the process would die by SIGTERM
    after a clean shutdown; a supervisor asking the service to stop should see success.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


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
    configure_logging(settings.log_level, json_lines=settings.log_json)
    config = uvicorn.Config(
        create_app(settings, auth_settings),
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # uvicorn's loggers go through ours (stderr); stdout is for the secret
        timeout_graceful_shutdown=int(settings.graceful_timeout_s),
    )
    server = _Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(STARTUP_FAILURE)
