"""``artstore restore``: ask for an archived file back and, with ``--wait``, follow it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from producers.cli.common import (
    AsJson,
    AuthUrl,
    ClientId,
    ConfigFile,
    FacadeUrl,
    FileId,
    client_settings,
    print_record,
    run,
)
from producers.client import ArtStoreClient

_SETTLED = {"restored", "expired", "failed"}


def restore(
    file_id: FileId,
    wait: Annotated[
        bool, typer.Option(help="Wait until the copy is restored (or the restore failed).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600.0,
    as_json: AsJson = False,
    config: ConfigFile = None,
    facade_url: FacadeUrl = None,
    auth_url: AuthUrl = None,
    client_id: ClientId = None,
) -> None:
    """Restore an archived file's content for a while (downloads are then served from the
    restored copy); exits 1 if the restore failed."""
    settings = client_settings(config, facade_url, auth_url, client_id)

    async def work(client: ArtStoreClient) -> dict[str, Any]:
        asked = await client.restore(file_id)
        if not wait:
            return asked
        async with asyncio.timeout(timeout):
            while True:
                row = await client.restore_status(asked["restore_id"])
                if row["status"] in _SETTLED:
                    return row
                await asyncio.sleep(2)

    row = run(settings, work)
    print_record(row, f"Restore of {file_id}", as_json=as_json)
    if row.get("status") == "failed":
        raise typer.Exit(1)
