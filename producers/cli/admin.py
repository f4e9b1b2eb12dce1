"""``artstore elements list|mode`` and ``artstore accounts create|list|rotate|suspend|activate``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from events import Mode
from producers.accounts import account_role
from producers.cli.common import (
    AsJson,
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    client_settings,
    err,
    human_bytes,
    out,
    print_json,
    run,
)
from producers.client import ArtStoreClient

elements_app = typer.Typer(help="Storage elements: list them, move them through modes.")
accounts_app = typer.Typer(
    help="Service accounts on the auth service (needs a client with accounts:admin)."
)


@elements_app.command("list")
def elements_list(
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Every element: mode, capacity, whether it accepts uploads, how far an ar element's move
    to its cold tier has come, last heartbeat."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    items = run(settings, lambda client: client.elements())
    if as_json:
        print_json(items)
        return
    table = Table(
        "element", "mode", "priority", "used", "free", "accepting", "archive", "heartbeat"
    )
    for e in items:
        table.add_row(
            str(e.get("element_id")),
            str(e.get("mode")),
            str(e.get("priority")),
            human_bytes(e.get("used_bytes")),
            human_bytes(e.get("free_bytes")),
            "yes" if e.get("accepting_uploads") else "no",
            archive_summary(e.get("archive")),
            str(e.get("last_heartbeat_at") or "")[:19],
        )
    out.print(table)


def archive_summary(archive: dict[str, Any] | None) -> str:
    """An ar element's move to its cold tier in a few words ("-" before ar)."""
    if not archive:
        return "-"
    if archive.get("in_place"):
        return f"{archive.get('state')} in place"
    summary = (
        f"{archive.get('state')}: {archive.get('files_cold')} cold, "
        f"{archive.get('files_online')} online"
    )
    failed = archive.get("files_failed") or 0
    return f"{summary}, {failed} failed" if failed else summary


@elements_app.command("mode")
def elements_mode(
    element_id: Annotated[str, typer.Argument(help="The element, e.g. se-01.")],
    mode: Annotated[Mode, typer.Argument(help="Target mode: rw -> ro -> ar; ro -> rw.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the element's history).")],
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Required to move ro back to rw.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait until the element reports the mode.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 60.0,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Move an element to another mode (scope elements:admin); exits 1 if it refused."""
    settings = client_settings(config, facade_url, auth_url, client_id)

    async def work(client: ArtStoreClient) -> dict[str, Any] | None:
        before = _element(await client.elements(), element_id)
        refused_before = before.get("last_mode_rejection") if before else None
        await client.change_mode(element_id, mode, reason=reason, confirm=confirm)
        if not wait:
            return None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = _element(await client.elements(), element_id) or {}
            if now.get("mode") == mode.value:
                return now
            refused = now.get("last_mode_rejection")
            if refused and refused != refused_before:
                return now
            await asyncio.sleep(0.2)
        return {}

    final = run(settings, work)
    if final is None:
        out.print(f"mode change of {element_id} to {mode.value} requested", highlight=False)
    elif final.get("mode") == mode.value:
        out.print(f"element {element_id} is now {mode.value}", highlight=False)
    elif final:
        err.print(f"[red]{_refusal(element_id, final.get('last_mode_rejection') or {})}[/red]")
        raise typer.Exit(1)
    else:
        err.print(f"[red]element {element_id} did not report mode {mode.value} in time[/red]")
        raise typer.Exit(1)


def _refusal(element_id: str, refused: dict[str, Any]) -> str:
    """One sentence for a ModeChangeRejected fact: the legal transitions and the CLI's flag."""
    current, requested = refused.get("current_mode"), refused.get("requested_mode")
    allowed = [str(mode) for mode in refused.get("allowed") or []]
    if current == requested:
        return f"element {element_id} is already {current}"
    if requested in allowed:  # legal, so what was missing is the confirmation
        return f"element {element_id} is {current}; moving it to {requested} needs --confirm"
    legal = ", ".join(allowed) or "none (it never changes mode)"
    return (
        f"element {element_id} cannot move from {current} to {requested}; "
        f"allowed from {current}: {legal}"
    )


def _element(items: list[dict[str, Any]], element_id: str) -> dict[str, Any] | None:
    return next((e for e in items if e.get("element_id") == element_id), None)


def _account_table(accounts: list[dict[str, Any]], *, secret: str | None = None) -> Table:
    table = Table("name", "client id", "role", "status", "rate limit", "secret expires", "id")
    for a in accounts:
        table.add_row(
            str(a.get("name")),
            str(a.get("client_id")),
            str(a.get("role")),
            str(a.get("status")),
            str(a.get("rate_limit")),
            str(a.get("secret_expires_at") or "")[:19],
            str(a.get("id")),
        )
    return table


def _show_secret(account: dict[str, Any]) -> None:
    out.print(_account_table([account]))
    out.print(f"client_id={account.get('client_id')}", highlight=False)
    out.print(f"client_secret={account.get('client_secret')}", highlight=False)
    err.print("[yellow]The secret is shown only now; store it safely.[/yellow]")


@accounts_app.command("create")
def accounts_create(
    name: Annotated[str, typer.Argument(help="Account name (letters, digits, dashes).")],
    role: Annotated[
        str,
        typer.Option(
            help="admin, user, auditor or readonly.",
            # A callback, not a click choice: a wrong role is one line (exit 2), like the SDK's.
            callback=lambda value: account_role(value).value,
        ),
    ] = "user",
    description: Annotated[str, typer.Option(help="What the account is for.")] = "",
    rate_limit: Annotated[
        int | None, typer.Option(help="Requests per minute (default: the service's).")
    ] = None,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Create a service account and print its secret (once)."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    created = run(
        settings,
        lambda client: client.accounts.create(
            name, role=role, description=description, rate_limit=rate_limit
        ),
    )
    _show_secret(created)


@accounts_app.command("list")
def accounts_list(
    status: Annotated[
        str | None, typer.Option(help="active, suspended, expired or deleted.")
    ] = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """List service accounts (secrets are never shown)."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    items = run(settings, lambda client: client.accounts.list(status=status, limit=500))
    if as_json:
        print_json(items)
    else:
        out.print(_account_table(items))


@accounts_app.command("rotate")
def accounts_rotate(
    account: Annotated[str, typer.Argument(help="Account id, client id or name.")],
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Give an account a new generated secret and print it (once); the previous secret stays
    valid for the service's grace period."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    _show_secret(run(settings, lambda client: client.accounts.rotate(account)))


@accounts_app.command("suspend")
def accounts_suspend(
    account: Annotated[str, typer.Argument(help="Account id, client id or name.")],
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Suspend an account: it gets no new tokens until activated."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    out.print(_account_table([run(settings, lambda client: client.accounts.suspend(account))]))


@accounts_app.command("activate")
def accounts_activate(
    account: Annotated[str, typer.Argument(help="Account id, client id or name.")],
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Activate a suspended account."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    out.print(_account_table([run(settings, lambda client: client.accounts.activate(account))]))
