"""``artstore status|search|meta|download|rm``: the file commands over the SDK (``artstore
upload`` is in :mod:`producers.cli.upload`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    TaskID,
)
from rich.table import Table

from events.uploads import OUTCOME_FAILED
from producers.cli.common import (
    AsJson,
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    FileId,
    client_settings,
    err,
    human_bytes,
    out,
    parse_pairs,
    print_json,
    print_record,
    run,
    transfer_progress,
)
from producers.client import ArtStoreClient
from producers.errors import ArtStoreError, BadRequest, NotFound, Rejected, Timeout


def status(
    file_id: FileId,
    wait: Annotated[bool, typer.Option(help="Wait until it is stored or rejected.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 120.0,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Show an upload's status (queued, stored, rejected, failed, or deleted: when, by whom);
    exits 1 if rejected."""
    settings = client_settings(config, facade_url, auth_url, client_id)

    async def work(client: ArtStoreClient) -> dict[str, Any]:
        if wait:
            with contextlib.suppress(Rejected, Timeout, NotFound):
                await client.handle(file_id).wait(timeout)
        return await client.upload_status(file_id)

    row = run(settings, work)
    print_record(row, f"Upload {file_id}", as_json=as_json)
    if row.get("status") in OUTCOME_FAILED:
        raise typer.Exit(1)


def search(
    query: Annotated[
        str | None, typer.Argument(help='Web-search syntax: words, "phrases", -not.')
    ] = None,
    filename: Annotated[str | None, typer.Option(help="Filename contains.")] = None,
    extension: Annotated[
        list[str] | None, typer.Option("--ext", help="Extension (repeat).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Has tag (repeat).")] = None,
    element: Annotated[str | None, typer.Option(help="Stored on this element.")] = None,
    username: Annotated[str | None, typer.Option(help="Uploaded by this account name.")] = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", "-a", help="Custom attribute key=value.")
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="relevance, created_at, file_size, filename; '-' = desc.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Results per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page.")] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every version, not only each latest.")
    ] = False,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Search the archive's index."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    attributes = {k: str(v) for k, v in parse_pairs(attr, "--attr").items()}
    page = run(
        settings,
        lambda client: client.search(
            query,
            filename=filename,
            extension=extension,
            tag=tag,
            element=element,
            username=username,
            sort=sort,
            limit=limit,
            cursor=cursor,
            attributes=attributes,
            all_versions="true" if all_versions else None,
        ),
    )
    if as_json:
        print_json({"items": page.items, "next_cursor": page.next_cursor})
        return
    table = Table("file id", "filename", "size", "created", "element", "tags", title="Files")
    table.columns[0].no_wrap = True  # ids are copied from here: never cut or wrapped
    table.columns[0].min_width = 36
    for item in page.items:
        table.add_row(
            str(item.get("file_id")),
            str(item.get("original_filename")),
            human_bytes(item.get("file_size")),
            str(item.get("created_at", ""))[:19],
            str(item.get("element_id", "")),
            ", ".join(item.get("tags") or []),
        )
    out.print(table)
    if page.next_cursor:
        err.print(f"more results: --cursor {page.next_cursor}")


def meta(
    file_id: FileId,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Print a file's metadata (its attr.json) as JSON."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    print_json(run(settings, lambda client: client.get_metadata(file_id)))


def download(
    file_id: FileId,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File or directory (default: original name, here).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite an existing file.")
    ] = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Download a file with progress, resuming an interrupted one; verifies sha256.

    The bytes go to <output>.part first; running the command again after an interruption
    asks only for the rest. The file appears under its name once its sha256 matches.
    """
    settings = client_settings(config, facade_url, auth_url, client_id)

    async def work(client: ArtStoreClient) -> Any:
        # The bar appears with the first bytes: an unknown id or an existing file is refused
        # (by the metadata lookup and the overwrite check) before anything is drawn.
        progress = transfer_progress()
        task: TaskID | None = None

        def report(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                if done == 0 and total > 0:
                    return  # nothing received yet: the content may still be refused
                progress.start()
                task = progress.add_task(file_id, total=total)
            progress.update(task, completed=done, total=total)

        try:
            return await client.download(file_id, output, progress=report, overwrite=force)
        except FileExistsError as exc:
            raise BadRequest(f"{exc}; pass --force to overwrite it") from None
        except ArtStoreError as exc:
            if exc.reason != "archived":
                raise
            raise ArtStoreError(
                f"file {file_id} is archived: its content is offline. Run `artstore restore "
                f"{file_id} --wait` to have it restored for a while, then download it again.",
                reason="archived",
                status=exc.status,
            ) from None
        finally:
            progress.stop()

    result = run(settings, work)
    resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
    out.print(
        f"saved {result.path} ({human_bytes(result.size)}, sha256 {result.sha256} verified"
        f"{resumed})",
        highlight=False,
    )


def rm(
    file_id: FileId,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Delete a file (only files on edit elements can be deleted)."""
    settings = client_settings(config, facade_url, auth_url, client_id)
    if not yes:
        typer.confirm(f"delete file {file_id}?", abort=True)
    command_id = run(settings, lambda client: client.delete(file_id, reason=reason))
    out.print(f"deletion of {file_id} requested (command {command_id})", highlight=False)
