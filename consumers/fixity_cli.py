"""``artstore fixity run|report``."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated
from uuid import UUID

import typer

fixity_app = typer.Typer(help="Fixity: re-check stored files now, and report on the checks.")


@fixity_app.command("run")
def run(
    element: Annotated[str, typer.Option("--element", help="The element to check.")],
    file: Annotated[str | None, typer.Option("--file", help="Only this file (its id).")] = None,
    max_mb_per_s: Annotated[
        float | None, typer.Option(help="Read at most this many MB/s (default: unbounded).")
    ] = None,
    as_json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check an element (or one file) now and announce what is found. Exit 1 on a failure."""
    from base.settings import load_settings
    from consumers.fixity import UnknownElementOrFile, run_fixity

    try:
        file_id = UUID(file) if file else None
    except ValueError:
        raise typer.BadParameter(f"{file!r} is not a file id", param_hint="--file") from None
    try:
        checked = asyncio.run(
            run_fixity(
                load_settings(),
                element,
                file_id=file_id,
                bytes_per_s=None if max_mb_per_s is None else max_mb_per_s * 1e6,
            )
        )
    except UnknownElementOrFile as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json_output:
        typer.echo(checked.model_dump_json())
    else:
        typer.echo(
            f"element {element}: {checked.checked} checked = {checked.sound} sound + "
            f"{checked.failed} failed + {checked.unreadable} unreadable "
            f"({checked.bytes_checked} bytes; pass {checked.pass_id})"
        )
        for kind, count in sorted(checked.findings.items()):
            typer.echo(f"  {kind.value}: {count}")
        for unreadable in checked.unreadable_files:
            typer.echo(f"  unreadable, retried at the next pass: {unreadable.storage_path}")
    if checked.failed:
        raise typer.Exit(1)


@fixity_app.command("report")
def report(
    element: Annotated[str | None, typer.Option("--element", help="Only this element.")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Passes finished at or after this instant (UTC).")
    ] = None,
    as_json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The fixity log: passes, totals (checked = sound + failed + unreadable), findings."""
    from datetime import UTC

    from base.settings import load_settings
    from consumers.fixity import fixity_report

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    result = asyncio.run(fixity_report(load_settings(), element_id=element, since=since))
    if as_json_output:
        typer.echo(json.dumps(result.as_dict(), default=str))
        return
    t = result.totals
    typer.echo(
        f"{len(result.passes)} passes: {t['checked']} checked = {t['sound']} sound + "
        f"{t['failed']} failed + {t['unreadable']} unreadable; {t['bytes_checked']} bytes read"
    )
    for p in result.passes:
        typer.echo(
            f"  {p['finished_at']} {p['element_id']} {p['scope']} {p['pass_id']}: "
            f"{p['checked']} checked, {p['failed']} failed, {p['unreadable']} unreadable"
        )
    typer.echo(f"{len(result.findings)} findings:")
    for f in result.findings:
        typer.echo(f"  {f['element_id']} {f['storage_path']}: {f['kind']} ({f['detail']})")
    if result.findings_not_indexed:
        typer.echo(
            f"note: {result.findings_not_indexed} failed items have no finding in the index yet "
            "(the projector may be behind)"
        )
    typer.echo(f"{len(result.open_failures)} files whose last check failed")
