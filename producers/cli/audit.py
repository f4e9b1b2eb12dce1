"""``artstore audit``: read the audit trail (needs a client with ``audit:read``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from producers.cli.common import (
    AsJson,
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    client_settings,
    out,
    print_json,
    run,
)


def audit(
    action: Annotated[
        str | None, typer.Option(help="An action, or a prefix ending in '.', e.g. token.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who acted (a client id).")] = None,
    subject: Annotated[str | None, typer.Option(help="What was acted on.")] = None,
    outcome: Annotated[str | None, typer.Option(help="success or failure.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601, exclusive.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Entries per page.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Audit entries, newest first: who did what to whom, when, and how it ended."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    page = run(
        settings,
        lambda client: client.audit(
            limit=limit,
            cursor=cursor,
            action=action,
            actor=actor,
            subject=subject,
            outcome=outcome,
            since=since,
            until=until,
        ),
    )
    if as_json:
        print_json(page)
        return
    table = Table("when", "action", "actor", "subject", "outcome", "reason", title="Audit")
    for entry in page["items"]:
        table.add_row(
            *(
                escape(str(entry.get(k) or ""))
                for k in ("occurred_at", "action", "actor", "subject", "outcome", "reason")
            )
        )
    out.print(table)
    if page.get("next_cursor"):
        out.print(f"more: --cursor {page['next_cursor']}")
