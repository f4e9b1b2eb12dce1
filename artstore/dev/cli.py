"""``artstore dev`` and ``artstore demo``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from artstore.dev.services import DEFAULT_DATA_DIR, Layout, read_env_file

console = Console()


def dev(
    data_dir: Annotated[
        Path, typer.Option(help="Where everything is kept; a restart on it keeps everything.")
    ] = DEFAULT_DATA_DIR,
    ephemeral: Annotated[
        bool,
        typer.Option(
            "--ephemeral", help="Kafka in memory and nothing kept: the data dir is wiped at stop."
        ),
    ] = False,
    port_base: Annotated[
        int | None,
        typer.Option(
            help="First of 6 consecutive ports: auth, facade, projector metrics, 3 elements "
            "(default 8080, or what the data dir used last).",
            min=1024,
            max=65000,
        ),
    ] = None,
) -> None:
    """Run all of ArtStore on this machine until Ctrl-C: stack, auth, projector, facade and three
    storage elements (local edit, local rw, S3 rw), each a supervised process."""
    from artstore.dev.runner import DevError, DevOptions, run_dev

    try:
        code = run_dev(DevOptions(data_dir, ephemeral, port_base), console)
    except DevError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="The data dir of the running `artstore dev` (URLs, credentials).")
    ] = DEFAULT_DATA_DIR,
    facade_url: Annotated[str | None, typer.Option(help="Default: from the data dir.")] = None,
    auth_url: Annotated[str | None, typer.Option(help="Default: from the data dir.")] = None,
    client_id: Annotated[
        str | None, typer.Option(envvar="ARTSTORE_CLIENT_ID", help="Admin client id.")
    ] = None,
    client_secret: Annotated[
        str | None, typer.Option(envvar="ARTSTORE_CLIENT_SECRET", help="Admin client secret.")
    ] = None,
    large_mb: Annotated[
        int, typer.Option(help="Size of the large upload in MiB.", min=1, max=4096)
    ] = 64,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each outcome.")] = 120.0,
) -> None:
    """A self-checking tour of a running `artstore dev`: upload (one large file, streamed),
    search in English and Russian, download and verify, move an element rw -> ro and back,
    replay the projection. Exits 1 if any check fails."""
    from artstore.dev.facade_client import FacadeClient
    from artstore.dev.tour import MIB, Tour, summary

    saved = _saved_settings(data_dir)
    facade_url = facade_url or saved.get("ARTSTORE_FACADE_URL")
    auth_url = auth_url or saved.get("ARTSTORE_AUTH_URL")
    client_id = client_id or saved.get("ARTSTORE_CLIENT_ID")
    client_secret = client_secret or saved.get("ARTSTORE_CLIENT_SECRET")
    missing = [
        name
        for name, value in (
            ("--facade-url", facade_url),
            ("--auth-url", auth_url),
            ("--client-id", client_id),
            ("--client-secret", client_secret),
        )
        if not value
    ]
    if missing:
        Console(stderr=True).print(
            f"[red]error:[/red] no {', '.join(missing)}: start `artstore dev` "
            f"(it writes {Layout(data_dir).env_file}) or pass them",
            highlight=False,
        )
        raise typer.Exit(2)
    assert facade_url is not None
    assert auth_url is not None
    assert client_id is not None
    assert client_secret is not None

    async def run_tour() -> Tour:
        client = FacadeClient(facade_url, auth_url, client_id, client_secret)
        tour = Tour(client, console, large_bytes=large_mb * MIB, timeout_s=timeout)
        try:
            await tour.run()
        finally:
            await client.aclose()
        return tour

    started = time.perf_counter()
    tour = asyncio.run(run_tour())
    took = time.perf_counter() - started
    colour = "green" if tour.ok else "red"
    console.print(f"\n[bold {colour}]{summary(tour.checks)}[/bold {colour}] in {took:.1f} s")
    raise typer.Exit(0 if tour.ok else 1)


def _saved_settings(data_dir: Path) -> dict[str, str]:
    path = Layout(data_dir).env_file
    if not path.is_file():
        return {}
    return read_env_file(path)
