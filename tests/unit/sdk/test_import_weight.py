"""Importing the SDK loads no server code: no FastAPI, no uvicorn, nothing of the auth service
(nor any other service's package)."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "auth",
    "storage_workers",
    "consumers",
    "facade",
    "operations",
)


def test_importing_producers_loads_no_server_code() -> None:
    script = "import json, sys, producers; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    server = [name for name in loaded if name.split(".")[0] in SERVER_PACKAGES]
    assert "producers" in loaded
    assert server == []
