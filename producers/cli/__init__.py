"""The ``artstore`` commands users and operators run against a deployment, over the SDK."""

from __future__ import annotations

import typer

from producers.cli.admin import accounts_app, elements_app
from producers.cli.audit import audit
from producers.cli.files import download, meta, rm, search, status
from producers.cli.lifecycle import hold_app, versions
from producers.cli.restores import restore
from producers.cli.upload import upload


def mount(app: typer.Typer) -> None:
    """Add the client commands to the ``artstore`` app."""
    app.command("upload")(upload)
    app.command("status")(status)
    app.command("search")(search)
    app.command("meta")(meta)
    app.command("download")(download)
    app.command("rm")(rm)
    app.command("versions")(versions)
    app.add_typer(hold_app, name="hold")
    app.command("restore")(restore)
    app.add_typer(elements_app, name="elements")
    app.add_typer(accounts_app, name="accounts")
    app.command("audit")(audit)


__all__ = ["mount"]
