"""Headless Chromium for the console's browser tests: Debian's ``chromium``, installed on demand.

Nothing is downloaded by the driver: Playwright drives the system's browser through
``executable_path``. Where ``/usr/bin/chromium`` is missing it is installed with apt (as root);
where that is impossible the tests are skipped with one line, except under ``CI=true``, where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install() -> str | None:
    """Install Debian's chromium; None on success, else why not."""
    if os.geteuid() != 0:
        return "not root, so apt-get cannot install it"
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}"
    return None


def chromium_or_skip() -> Path:
    """The browser, installing it if needed; skip (or fail under CI) when it cannot be had."""
    if CHROMIUM.exists():
        return CHROMIUM
    why = _install()
    if why is None and CHROMIUM.exists():
        return CHROMIUM
    message = f"console browser tests need {CHROMIUM}: {why or 'not installed by apt'}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
