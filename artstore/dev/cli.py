"""``artstore dev`` and ``artstore demo``."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from artstore.dev.services import DEFAULT_DATA_DIR, Layout
from artstore.dev.tour import CheckFailed

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
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Do not run: delete the data dir's deployment for good (its database and Redis "
            "keys on the servers, its stack and the data dir itself).",
        ),
    ] = False,
) -> None:
    """Run all of ArtStore on this machine until Ctrl-C: stack, auth, projector, facade, webhook
    dispatcher and three storage elements (local edit, local rw, S3 rw), each a supervised
    process."""
    from artstore.dev.runner import DevError, DevOptions, run_dev
    from artstore.dev.runner import purge as purge_data_dir
    from artstore.stack import StackError

    try:
        if purge:
            for item in purge_data_dir(data_dir):
                console.print(f"removed {item}", highlight=False)
            raise typer.Exit(0)
        code = run_dev(DevOptions(data_dir, ephemeral, port_base), console)
    except (DevError, StackError) as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def demo(
    data_dir: Annotated[
        Path, typer.Option(help="The data dir of the running `artstore dev` (URLs, credentials).")
    ] = DEFAULT_DATA_DIR,
    facade_url: Annotated[str | None, typer.Option(help="Default: from the data dir.")] = None,
    auth_url: Annotated[str | None, typer.Option(help="Default: from the data dir.")] = None,
    large_mb: Annotated[
        float, typer.Option(help="Size of the large upload in MiB.", min=0.001, max=4096)
    ] = 64,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each outcome.")] = 120.0,
) -> None:
    """A self-checking tour of a running `artstore dev` through the SDK: upload (one large file,
    streamed), search in English and Russian, download and verify, move the rw elements to ro
    (an upload is refused) and back, replay the projection. Exits 1 if any check fails.

    Settings, URLs and the admin credentials come from the data dir's artstore.env (ARTSTORE_*
    variables win)."""
    from artstore.dev.tour import MIB, Tour, summary
    from producers import ArtStoreClient, load_client_settings

    env_file = Layout(data_dir).env_file
    if not env_file.is_file():
        Console(stderr=True, soft_wrap=True).print(
            f"[red]error:[/red] {env_file} does not exist: start `artstore dev --data-dir "
            f"{data_dir}` first",
            highlight=False,
        )
        raise typer.Exit(2)
    settings = load_client_settings(env_file=env_file, facade_url=facade_url, auth_url=auth_url)

    async def run_tour() -> Tour:
        async with ArtStoreClient(settings) as client:
            tour = Tour(
                client,
                console,
                large_bytes=int(large_mb * MIB),
                timeout_s=timeout,
                replay=lambda: replay_projection(env_file),
            )
            await tour.run()
        return tour

    console.print(f"ArtStore demo against {settings.facade_url}\n")
    started = time.perf_counter()
    tour = asyncio.run(run_tour())
    took = time.perf_counter() - started
    colour = "green" if tour.ok else "red"
    console.print(f"\n[bold {colour}]{summary(tour.checks)}[/bold {colour}] in {took:.1f} s")
    raise typer.Exit(0 if tour.ok else 1)


async def replay_projection(env_file: Path) -> str:
    """Run ``artstore replay`` as an operator would, with the deployment's settings."""
    from artstore.dev.services import read_env_file

    env = {**os.environ, **read_env_file(env_file), "ARTSTORE_ENV_FILE": str(env_file)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "artstore",
        "replay",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    lines = output.decode(errors="replace").strip().splitlines()
    if process.returncode != 0:
        raise CheckFailed(f"artstore replay exited {process.returncode}: {' '.join(lines[-3:])}")
    return lines[-1] if lines else "replayed"
