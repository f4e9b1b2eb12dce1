"""Upload a file, wait until its element stored it, find it, and download it back verified.

Run it next to a running ``artstore dev``, with the env file it prints (URLs, staging and the
admin's credentials)::

    export ARTSTORE_ENV_FILE=/path/to/artstore-data/artstore.env
    python -m producers.examples.upload_and_wait report.pdf

or as another service account: ``ARTSTORE_CLIENT_CLIENT_ID`` and ``ARTSTORE_CLIENT_CLIENT_SECRET``
win over the file. Settings come (highest first) from ``ARTSTORE_CLIENT_*`` (and the shared
``ARTSTORE_*``) variables, the env file (``ARTSTORE_ENV_FILE``, else the local stack's
``stack.env``), and a TOML file named by ``ARTSTORE_CLIENT_CONFIG`` — exactly as the ``artstore``
commands read them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from producers import (
    ArtStoreClient,
    ArtStoreError,
    RateLimited,
    Rejected,
    Timeout,
    load_client_settings,
)


async def main(path: Path) -> int:
    config = os.environ.get("ARTSTORE_CLIENT_CONFIG")
    settings = load_client_settings(Path(config) if config else None)
    async with ArtStoreClient(settings) as client:
        handle = await client.upload(
            path,
            description=f"example upload of {path.name}",
            tags=["example"],
            custom_attributes={"source": "upload_and_wait"},
        )
        print(f"queued {handle.filename} as {handle.file_id} (sha256 {handle.checksum})")
        try:
            stored = await handle.wait(timeout=120)
        except Rejected as exc:
            print(f"rejected: {exc.reason}: {exc.detail}")
            return 1
        except Timeout as exc:
            print(f"no outcome yet: {exc}")
            return 1
        print(f"stored on {stored.element_id} at {stored.storage_path}")

        page = await client.search(filename=path.name, tag=["example"])
        print(f"search finds {len(page.items)} file(s) named {path.name}")

        with tempfile.TemporaryDirectory() as tmp:
            result = await client.download(stored.file_id, Path(tmp) / path.name)
            print(f"downloaded {result.size} bytes, sha256 verified: {result.sha256}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m producers.examples.upload_and_wait FILE")
    try:
        sys.exit(asyncio.run(main(Path(sys.argv[1]))))
    except RateLimited as exc:
        sys.exit(f"rate limited: retry in {exc.retry_after:g} s")
    except (ArtStoreError, FileNotFoundError) as exc:  # also a missing env or config file
        sys.exit(f"error: {exc}")
