"""``python -m artstore.stack`` / ``artstore stack``: up, down, env, status."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from artstore.stack.errors import StackError
from artstore.stack.lifecycle import (
    ServiceStatus,
    ensure_stack,
    read_stack_env,
    stack_status,
    stop_stack,
)
from artstore.stack.state import StateStore, resolve_state_dir
from artstore.stack.tansu import KafkaBroker, KafkaStorage

stack_app = typer.Typer(
    name="stack",
    help="Run the real services ArtStore needs (Kafka protocol, PostgreSQL, Redis, S3) locally.",
    no_args_is_help=True,
    add_completion=False,
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="ARTSTORE_STACK_DIR",
        help="Where state.json, stack.env, logs and data live [default: ./.artstore/stack].",
    ),
]


@stack_app.command()
def up(
    state_dir: StateDir = None,
    kafka: Annotated[
        KafkaBroker | None,
        typer.Option(
            "--kafka",
            envvar="ARTSTORE_STACK_KAFKA",
            help="Broker: tansu (embedded, default) or apache (Apache Kafka; needs java and mvn).",
        ),
    ] = None,
    kafka_storage: Annotated[
        KafkaStorage | None,
        typer.Option(help="Tansu's storage: memory (default), or s3 to survive restarts."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service.")] = 60.0,
) -> None:
    """Start what is not running, reuse what is; write stack.env."""
    started = time.monotonic()
    try:
        ensure_stack(state_dir, kafka_storage=kafka_storage, kafka_broker=kafka, timeout=timeout)
    except StackError as exc:
        typer.echo(f"stack up failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_status(state_dir)
    env_path = StateStore(resolve_state_dir(state_dir)).env_path
    typer.echo(f"ready in {time.monotonic() - started:.1f}s; environment in {env_path}", err=True)


@stack_app.command()
def down(
    state_dir: StateDir = None,
    purge: Annotated[bool, typer.Option(help="Also delete the stack's data and logs.")] = False,
) -> None:
    """Stop what the stack started; a machine's own PostgreSQL/Redis are left alone."""
    try:
        stopped = stop_stack(state_dir, purge=purge)
    except StackError as exc:
        typer.echo(f"stack down failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}", err=True)


@stack_app.command()
def env(
    state_dir: StateDir = None,
    export: Annotated[
        bool, typer.Option(help="Prefix each line with 'export' for a shell's eval.")
    ] = False,
) -> None:
    """Print the ARTSTORE_* variables of the running stack."""
    stack_env = read_stack_env(state_dir)
    if stack_env is None:
        typer.echo("no stack is up here: run `python -m artstore.stack up`", err=True)
        raise typer.Exit(1)
    typer.echo(stack_env.env_file(export=export), nl=False)


@stack_app.command()
def status(
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Show each service, its URL and pid, and whether it answers. Exit 3 if any is down."""
    statuses = _print_status(state_dir, as_json=as_json)
    if not all(item.up for item in statuses):
        raise typer.Exit(3)


def _print_status(state_dir: Path | None, *, as_json: bool = False) -> list[ServiceStatus]:
    statuses = stack_status(state_dir)
    if as_json:
        typer.echo(json.dumps([asdict(item) for item in statuses], indent=2))
        return statuses
    for item in statuses:
        pid = str(item.pid) if item.owned and item.pid else "external" if item.url else "-"
        typer.echo(
            f"{item.name:<9} {'up' if item.up else 'down':<5} {pid:<9} {item.url}"
            + (f"  ({item.detail})" if item.detail else "")
        )
    return statuses
