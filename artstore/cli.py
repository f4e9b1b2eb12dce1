"""The ``artstore`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import schemas
from artstore.errors import explain
from auth.cli import auth_app
from base.settings import Settings, load_settings

app = typer.Typer(
    help="ArtStore: a long-term archive for documents, driven by events.",
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(help="Kafka topics.")
schemas_app = typer.Typer(help="JSON Schemas, the AsyncAPI and the OpenAPI documents.")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(auth_app, name="auth")

console = Console()


class LogFormat(StrEnum):
    """How log lines are written: JSON (one object a line) or text for a person."""

    JSON = "json"
    TEXT = "text"


@app.callback()
def _options(
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="Log lines as json or text (every command and the services it starts).",
        ),
    ] = None,
) -> None:
    """ArtStore: a long-term archive for documents, driven by events."""
    from base.logging import configure_logging

    if log_format is not None:
        # Services started by this command (artstore dev) and their settings see it too.
        os.environ["ARTSTORE_LOG_FORMAT"] = log_format.value
    chosen = log_format.value if log_format else os.environ.get("ARTSTORE_LOG_FORMAT")
    configure_logging(
        "WARNING",
        service="artstore-cli",
        log_format="text" if chosen == "text" else "json",
    )


SCHEMAS_DIR = Path(schemas.__file__).resolve().parent


def _settings() -> Settings:
    return load_settings()


@topics_app.command("create")
def topics_create() -> None:
    """Create every ArtStore topic with its production configuration (idempotent)."""
    from events import create_topics

    settings = _settings()
    report = asyncio.run(
        create_topics(
            settings.kafka_bootstrap,
            settings.topic_names(),
            max_message_bytes=settings.max_message_bytes,
        )
    )
    table = Table("topic", "partitions", "state")
    for name, count in sorted({**report.existing, **report.created}.items()):
        state = "created" if name in report.created else "exists"
        if name in report.mismatched:
            wanted, _ = report.mismatched[name]
            state = f"[red]exists with {count}, contract says {wanted}[/red]"
        table.add_row(name, str(count), state)
    console.print(table)
    if report.mismatched:
        raise typer.Exit(1)


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Option(help="Where to write the files.")] = SCHEMAS_DIR,
) -> None:
    """Write a JSON Schema per event type, the AsyncAPI document and the OpenAPI documents of
    the facade and the auth service."""
    from artstore.openapi_export import export_openapi
    from events.schema_export import export

    for path in [*export(directory), *export_openapi(directory)]:
        console.print(f"wrote {path}")


def _mount_stack() -> None:
    from artstore.dev import demo, dev
    from artstore.stack import stack_app
    from storage_workers.cli import rebuild as rebuild_command
    from storage_workers.cli import storage_app

    app.command("dev")(dev)
    app.command("demo")(demo)
    app.add_typer(stack_app, name="stack")
    app.add_typer(storage_app, name="storage")
    app.command("rebuild")(rebuild_command)


def _mount_query() -> None:
    from consumers.cli import query_app
    from consumers.cli import replay as replay_command
    from consumers.fixity_cli import fixity_app
    from facade.cli import serve_facade

    query_app.command("facade")(serve_facade)
    app.add_typer(query_app, name="query")
    app.add_typer(fixity_app, name="fixity")
    app.command("replay")(replay_command)


def _mount_operations() -> None:
    from operations.cli import dlq_app, lag_command

    app.add_typer(dlq_app, name="dlq")
    app.command("lag")(lag_command)


def _mount_notifications() -> None:
    from notifications.cli import notifications_app

    app.add_typer(notifications_app, name="notifications")


_mount_stack()
_mount_query()
_mount_operations()
_mount_notifications()


def _mount_client() -> None:
    from producers.cli import mount

    mount(app)


_mount_client()


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    # The client library logs every failed connection attempt; the user gets one sentence instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("urllib3").setLevel(logging.CRITICAL)
    try:
        app()
    except Exception as exc:
        message = explain(exc)
        if message is None:
            raise
        # One line however wide the terminal: a script reading stderr must see the whole of it.
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", highlight=False)
        raise SystemExit(2) from None
