"""``artstore versions`` and ``artstore hold place|release``: a document's versions and a
file's legal hold (docs/lifecycle.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from producers.cli.common import (
    AsJson,
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    FileId,
    client_settings,
    human_bytes,
    out,
    print_json,
    run,
)

hold_app = typer.Typer(help="Place or release a file's legal hold (scope files:hold).")
Reason = Annotated[str, typer.Option(help="Why (kept in the sidecar and the audit trail).")]


def versions(
    file_id: FileId,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """List every version of the document a file belongs to, oldest first."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    body = run(settings, lambda client: client.versions(file_id))
    if as_json:
        print_json(body)
        return
    table = Table(
        "version", "file id", "filename", "size", "created", "state", title=body["document_id"]
    )
    table.columns[1].no_wrap = True
    table.columns[1].min_width = 36
    for v in body["versions"]:
        state = "deleted" if v.get("deleted_at") else "held" if v.get("legal_hold") else ""
        if v["file_id"] == body.get("latest"):
            state = ", ".join(s for s in ("latest", state) if s)
        table.add_row(
            str(v["document_version"]),
            v["file_id"],
            str(v.get("original_filename")),
            human_bytes(v.get("file_size")),
            str(v.get("created_at", ""))[:19],
            state,
        )
    out.print(table)


@hold_app.command("place")
def place(
    file_id: FileId,
    reason: Reason,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Put a file under legal hold: nothing deletes it until the hold is released."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    command_id = run(settings, lambda client: client.place_legal_hold(file_id, reason=reason))
    out.print(f"legal hold on {file_id} requested (command {command_id})", highlight=False)


@hold_app.command("release")
def release(
    file_id: FileId,
    reason: Reason,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Release a file's legal hold."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    command_id = run(settings, lambda client: client.release_legal_hold(file_id, reason=reason))
    out.print(
        f"release of the legal hold on {file_id} requested (command {command_id})", highlight=False
    )
