"""What every client command shares: configuration options, the client, output helpers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from producers.client import ArtStoreClient
from producers.models import parse_file_id
from producers.settings import ClientSettings, load_client_settings

T = TypeVar("T")

out = Console()
err = Console(stderr=True, soft_wrap=True)

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="ARTSTORE_CLIENT_CONFIG",
        help="TOML file with client settings (auth_url, facade_url, client_id, client_secret, "
        "staging...). Environment variables ARTSTORE_CLIENT_* override it.",
        show_default=False,
    ),
]
FacadeUrl = Annotated[
    str | None,
    typer.Option(envvar="ARTSTORE_CLIENT_FACADE_URL", help="Facade base URL.", show_default=False),
]
AuthUrl = Annotated[
    str | None,
    typer.Option(
        envvar="ARTSTORE_CLIENT_AUTH_URL", help="Auth service base URL.", show_default=False
    ),
]
ClientId = Annotated[
    str | None,
    typer.Option(
        envvar="ARTSTORE_CLIENT_CLIENT_ID",
        help="Service account client id; the secret comes only from "
        "ARTSTORE_CLIENT_CLIENT_SECRET or the config file.",
        show_default=False,
    ),
]


def _file_id(value: str) -> str:
    # A callback, not a click type: its BadRequest reaches `artstore`'s main as one line, exit 2.
    return str(parse_file_id(value))


FileId = Annotated[
    str, typer.Argument(help="The file id (a UUID).", callback=_file_id, show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def client_settings(
    config: Path | None, facade_url: str | None, auth_url: str | None, client_id: str | None
) -> ClientSettings:
    """Settings from flags, then ``ARTSTORE_*`` variables, the env file, the config."""
    return load_client_settings(
        config,
        facade_url=facade_url,
        auth_url=auth_url,
        client_id=client_id,
    )


@asynccontextmanager
async def open_client(settings: ClientSettings) -> AsyncIterator[ArtStoreClient]:
    client = ArtStoreClient(settings)
    try:
        yield client
    finally:
        await client.aclose()


def run(settings: ClientSettings, work: Callable[[ArtStoreClient], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` with a client, closing it afterwards."""

    async def main() -> T:
        async with open_client(settings) as client:
            return await work(client)

    return asyncio.run(main())


def print_json(value: Any) -> None:
    """JSON on stdout, unstyled, so it can be piped."""
    out.print_json(json.dumps(value, default=str, ensure_ascii=False), highlight=False)


def print_record(record: dict[str, Any], title: str, *, as_json: bool) -> None:
    """One record: JSON as is, or a field/value table of what it holds (no links, no empties)."""
    if as_json:
        print_json(record)
        return
    table = Table("field", "value", title=title)
    for key, value in record.items():
        if key != "links" and value is not None:
            table.add_row(key, str(value))
    out.print(table)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``key=value`` options into a dict; JSON values (numbers, true, lists) keep their type."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} must be key=value, got {pair!r}")
        try:
            value: Any = json.loads(raw)
            if isinstance(value, dict):
                value = raw
        except ValueError:
            value = raw
        result[key] = value
    return result


def transfer_progress(*, disable: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
    )
