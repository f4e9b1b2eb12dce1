"""``artstore upload``: stage and publish files or directories, wait, show a summary."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from events import RetentionPolicy
from producers.cli.common import (
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    client_settings,
    err,
    human_bytes,
    out,
    parse_pairs,
    print_json,
    run,
    transfer_progress,
)
from producers.client import ArtStoreClient, UploadHandle, upload_command_fields
from producers.errors import ArtStoreError, InvalidUpload, Rejected
from producers.models import StoredFile, UploadRequest, parse_file_id

#: Per-file progress bars up to this many files; beyond it only the total is shown.
MAX_FILE_BARS = 10


def _expand(paths: list[Path]) -> list[tuple[Path, str]]:
    """Every file to upload, with the path it is shown and recorded under: a file's name, or
    for a file found in a directory its path from that directory's name down
    (``documents/contracts/offer.txt``), kept in the sidecar as ``metadata.relative_path``."""
    files: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            top = path.resolve().parent
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                files.append((found, found.resolve().relative_to(top).as_posix()))
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise typer.BadParameter(f"{path} is neither a file nor a directory")
    if not files:
        raise typer.BadParameter("no files to upload")
    return files


#: The ``upload`` flag that sets each argument of an upload request.
_UPLOAD_FLAGS = {
    "ttl_days": "--ttl-days",
    "retention_policy": "--retention",
    "description": "--description",
    "tags": "--tag",
    "custom_attributes": "--attr",
    "version_of": "--version-of",
    "retain_until": "--retain-until",
}


def _check_requests(requests: list[UploadRequest]) -> None:
    """Refuse bad arguments before anything is drawn or staged, naming the flag."""
    for request in requests:
        try:
            upload_command_fields(request)
        except InvalidUpload as exc:
            flag = _UPLOAD_FLAGS.get(exc.field or "")
            if flag is None:
                raise
            raise InvalidUpload(
                f"{flag}{exc.detail.removeprefix(exc.field or '')}", field=exc.field
            ) from None


@dataclass
class _Outcome:
    source: str
    size: int
    handle: UploadHandle | None = None
    stored: StoredFile | None = None
    error: ArtStoreError | None = None

    @property
    def outcome(self) -> str:
        if self.stored is not None:
            return "stored"
        if self.error is not None:
            return "rejected" if isinstance(self.error, Rejected) else self.error.reason
        return "queued"

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "size": self.size,
            "file_id": str(self.handle.file_id) if self.handle else None,
            "outcome": self.outcome,
            "element_id": self.stored.element_id if self.stored else None,
            "storage_path": self.stored.storage_path if self.stored else None,
            "reason": self.error.reason if self.error else None,
            "detail": self.error.detail if self.error else None,
        }


def upload(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories (recursively).")],
    retention_policy: Annotated[
        RetentionPolicy,
        typer.Option("--retention", help="permanent (rw elements) or temporary (edit elements)."),
    ] = RetentionPolicy.PERMANENT,
    ttl_days: Annotated[
        int | None, typer.Option(help="Days a temporary file is kept (1-365, default 30).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description of every file.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat).")] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option("--attr", "-a", help="A custom attribute key=value (repeat)."),
    ] = None,
    version_of: Annotated[
        str | None,
        typer.Option(
            "--version-of",
            help="Upload as the next version of the document this file id belongs to.",
        ),
    ] = None,
    retain_until: Annotated[
        datetime | None,
        typer.Option(
            "--retain-until",
            help="Permanent files: the end of the retention period (ISO 8601, UTC if no zone).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for each upload's outcome.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the outcomes.")] = 120.0,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print each file's id and outcome as JSON (no progress bars)."),
    ] = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Upload files and directories, show progress, wait for the outcomes.

    A file from a directory keeps its path from the directory's name down in its metadata
    (metadata.relative_path). Exits 1 if any upload was rejected or did not finish within
    --timeout.
    """
    files = _expand(paths)
    if version_of is not None and len(files) > 1:
        raise typer.BadParameter("a new version is one file", param_hint="--version-of")
    attributes = parse_pairs(attr, "--attr")
    document = None if version_of is None else parse_file_id(version_of)
    retain = (
        retain_until.replace(tzinfo=UTC)
        if retain_until is not None and retain_until.tzinfo is None
        else retain_until
    )
    settings = client_settings(config, facade_url, auth_url, client_id)
    requests = [
        UploadRequest(
            source=path,
            filename=path.name,
            retention_policy=retention_policy,
            ttl_days=ttl_days,
            description=description,
            tags=list(tag or []),
            custom_attributes=attributes,
            metadata={"relative_path": relative} if relative != path.name else {},
            version_of=document,
            retain_until=retain,
        )
        for path, relative in files
    ]
    _check_requests(requests)
    outcomes = [_Outcome(rel, path.stat().st_size) for path, rel in files]

    async def work(client: ArtStoreClient) -> None:
        with transfer_progress(disable=as_json) as progress:
            total = progress.add_task(f"{len(files)} file(s)", total=sum(o.size for o in outcomes))
            bars = {}
            if len(files) > 1 and len(files) <= MAX_FILE_BARS:
                bars = {
                    id(r): progress.add_task(f"  {o.source}", total=o.size)
                    for r, o in zip(requests, outcomes, strict=True)
                }

            def advance(request: UploadRequest, size: int) -> None:
                progress.advance(total, size)
                if id(request) in bars:
                    progress.advance(bars[id(request)], size)

            try:
                handles = await client.upload_many(requests, progress=advance)
            except Rejected as exc:
                for outcome in outcomes:
                    outcome.error = exc
                return
        for outcome, handle in zip(outcomes, handles, strict=True):
            outcome.handle = handle
        if not wait:
            return
        waiting = contextlib.nullcontext() if as_json else err.status("waiting for outcomes...")
        with waiting:
            results = await asyncio.gather(
                *(h.wait(timeout) for h in handles), return_exceptions=True
            )
        for outcome, result in zip(outcomes, results, strict=True):
            if isinstance(result, StoredFile):
                outcome.stored = result
            elif isinstance(result, ArtStoreError):
                outcome.error = result
            elif isinstance(result, BaseException):
                raise result

    run(settings, work)
    failed = sum(1 for o in outcomes if o.error is not None)
    if as_json:
        print_json([o.as_json() for o in outcomes])
    else:
        out.print(_outcome_table(outcomes))
    if failed:
        err.print(f"[red]{failed} of {len(outcomes)} upload(s) did not succeed[/red]")
        raise typer.Exit(1)


def _outcome_table(outcomes: list[_Outcome]) -> Table:
    table = Table("file", "size", "outcome", "file id", "element / reason", title="Uploads")
    table.columns[3].no_wrap = True
    table.columns[3].min_width = 36
    for o in outcomes:
        file_id = str(o.handle.file_id) if o.handle else "-"
        if o.stored is not None:
            table.add_row(
                o.source,
                human_bytes(o.size),
                "[green]stored[/green]",
                file_id,
                f"{o.stored.element_id}:{o.stored.storage_path}",
            )
        elif o.error is not None:
            table.add_row(
                o.source,
                human_bytes(o.size),
                f"[red]{o.outcome}[/red]",
                file_id,
                f"{o.error.reason}: {o.error.detail}",
            )
        else:
            table.add_row(o.source, human_bytes(o.size), "queued", file_id, "")
    return table
