"""``artstore storage worker`` and ``artstore storage rebuild``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

storage_app = typer.Typer(help="Storage-element workers.", no_args_is_help=True)


@storage_app.command("worker")
def worker(
    element_id: Annotated[str | None, typer.Option(help="Element id, e.g. se-01.")] = None,
    root: Annotated[Path | None, typer.Option(help="Directory of a local element.")] = None,
    mode: Annotated[str | None, typer.Option(help="Mode of a new element: edit or rw.")] = None,
    priority: Annotated[int | None, typer.Option(help="Lower numbers fill first.")] = None,
) -> None:
    """Run one element's worker (settings from ARTSTORE_* and ARTSTORE_STORAGE_* variables)."""
    from base.settings import configure_service_logging, load_settings
    from storage_workers.config import WorkerConfig
    from storage_workers.service import run_service

    overrides: dict[str, object] = {}
    if element_id is not None:
        overrides["element_id"] = element_id
    if root is not None:
        overrides["root"] = root
        overrides["backend"] = "local"
    if mode is not None:
        overrides["mode"] = mode
    if priority is not None:
        overrides["priority"] = priority
    settings = load_settings()
    configure_service_logging(settings, "artstore-storage")
    config = WorkerConfig(**overrides)  # type: ignore[arg-type]
    asyncio.run(run_service(settings, config))


@storage_app.command("rebuild")
def rebuild(
    element: Annotated[str, typer.Option("--element", help="Element id to rebuild from.")],
    root: Annotated[
        Path | None,
        typer.Option(help="Directory of a local element (default: <data dir>/elements/<id>)."),
    ] = None,
    s3_prefix: Annotated[
        str | None, typer.Option(help="Key prefix of an element in S3, e.g. elements/se-s3/.")
    ] = None,
    s3_bucket: Annotated[
        str | None, typer.Option(help="Bucket of an element in S3 (default: ARTSTORE_S3_BUCKET).")
    ] = None,
) -> None:
    """Re-announce every file of an element from its sidecars (index rebuild from storage)."""
    from base.settings import load_settings
    from storage_workers.config import WorkerConfig
    from storage_workers.rebuild import rebuild_element

    overrides: dict[str, object] = {"element_id": element}
    if root is not None:
        overrides["root"] = root
        overrides["backend"] = "local"
    if s3_prefix is not None or s3_bucket is not None:
        if root is not None:
            raise typer.BadParameter("--root and --s3-prefix/--s3-bucket exclude each other")
        overrides["backend"] = "s3"
        overrides["s3_prefix"] = s3_prefix or ""
        if s3_bucket is not None:
            overrides["s3_bucket"] = s3_bucket
    settings = load_settings()
    config = WorkerConfig(**overrides)  # type: ignore[arg-type]
    report = asyncio.run(rebuild_element(settings, config))
    typer.echo(
        f"element {element}: {report.announced} files announced, {report.deleted} deletions, "
        f"{len(report.unreadable)} unreadable sidecars, {len(report.orphans)} data files "
        "without a sidecar"
    )
    for key in report.unreadable:
        typer.echo(f"  unreadable: {key}")
    for key in report.orphans:
        typer.echo(f"  orphan: {key}")
    if report.unreadable or report.orphans:
        raise typer.Exit(1)
