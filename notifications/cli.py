"""``artstore notifications ...``: run the webhook dispatcher; make a secret-sealing key."""

from __future__ import annotations

import typer

notifications_app = typer.Typer(help="Signed notifications: the webhook dispatcher.")


@notifications_app.command("run")
def run() -> None:
    """Deliver webhooks until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from base.settings import configure_service_logging, load_settings
    from notifications.sealing import SealingUnavailable
    from notifications.service import run_dispatcher_process, secret_box
    from notifications.settings import NotificationSettings

    settings = load_settings()
    configure_service_logging(settings, "artstore-notifications")
    notifications = NotificationSettings()
    try:
        secret_box(notifications)
    except SealingUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_dispatcher_process(settings, notifications)


@notifications_app.command("new-key")
def new_key(
    key_id: str = typer.Option("k1", help="The key's id, stored beside each secret."),
) -> None:
    """Print a fresh entry for ARTSTORE_NOTIFICATIONS_SECRET_KEYS (32 random bytes)."""
    from notifications.sealing import new_key_setting

    typer.echo(new_key_setting(key_id))
