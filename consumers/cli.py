"""``artstore query ...``: run the projector, replay it, check it against an element."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from base.settings import configure_service_logging, load_settings
from consumers.settings import ProjectorSettings

console = Console()
query_app = typer.Typer(help="The query projection: projector, replay, index check.")


@query_app.callback()
def _group() -> None:
    """The query projection: projector, facade, replay, index check (the facade's command is
    ``facade.cli.serve_facade``, added by ``artstore.cli``)."""


@query_app.command("projector")
def projector() -> None:
    """Run the live projector until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    from consumers.service import run_projector_process

    settings = load_settings()
    configure_service_logging(settings, "artstore-projector")
    run_projector_process(settings, ProjectorSettings())


@query_app.command("replay")
def replay(
    from_time: Annotated[
        datetime | None,
        typer.Option(help="Start from the first records at or after this instant (UTC)."),
    ] = None,
    swap: Annotated[bool, typer.Option(help="Swap the rebuilt tables in when caught up.")] = True,
    keep_old: Annotated[
        bool, typer.Option(help="Keep the replaced tables in an artstore_retired_* schema.")
    ] = True,
) -> None:
    """Rebuild the projection from the topics into fresh tables, then swap them in."""
    import asyncio

    from base.operations_audit import record_operation
    from consumers.replay import run_replay

    settings = load_settings()
    configure_service_logging(settings, "artstore-replay")
    if from_time is not None and from_time.tzinfo is None:
        from_time = from_time.replace(tzinfo=UTC)
    with console.status("replaying...") as status:
        report = run_replay(
            settings,
            ProjectorSettings(),
            from_time=from_time,
            swap=swap,
            keep_old=keep_old,
            progress=lambda n: status.update(f"replaying... {n} events applied"),
        )
    asyncio.run(
        record_operation(
            settings,
            "projection.replayed",
            subject="projection",
            details={
                "events": report.events,
                "from_time": None if from_time is None else from_time.isoformat(),
                "swapped": swap,
            },
        )
    )
    console.print(
        f"{report.events} events in {report.seconds:.1f}s "
        f"({report.events_per_second:,.0f} events/s); "
        + (
            f"swapped in; previous tables in {report.retired_schema or '(dropped)'}"
            if report.swapped
            else f"fresh tables left in schema {report.schema}"
        )
    )


@query_app.command("check")
def check(
    element: Annotated[str, typer.Option(help="The element whose sidecars to compare.")],
    as_json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare the index with an element's sidecars; print every difference (exit 1 if any)."""
    import asyncio

    from consumers.check import UnknownElement, as_json, check_element

    settings = load_settings()
    try:
        differences = asyncio.run(check_element(settings, element))
    except UnknownElement as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json_output:
        print(as_json(differences))
    else:
        for difference in differences:
            console.print(str(difference), markup=False)
        console.print(f"{len(differences)} difference(s) for element {element}")
    if differences:
        raise typer.Exit(1)
