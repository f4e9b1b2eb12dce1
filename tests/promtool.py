"""``promtool`` for the monitoring tests: from PATH, else out of Debian's ``prometheus`` package.

The binary is taken out of the package (``apt-get download``, ``dpkg-deb -x``) into the cache
directory (``$ARTSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/artstore``, else
``~/.cache/artstore``) rather than installed: installing the package would also set up and
start a Prometheus server, and its recommended node exporter, on the machine. When apt's lists
lack the package, ``apt-get update`` runs first (as root). Where none of this works the tests
that need promtool are skipped with one line, except under ``CI=true``, where it is a failure.

``python -m tests.promtool`` fetches it the same way and prints its path (exit 1 if it can't).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from artstore.stack.apache_kafka import cache_root

PACKAGE = "prometheus"


def cached() -> Path:
    """Where the promtool taken out of Debian's package is kept."""
    return cache_root() / "debian-prometheus" / "promtool"


def find() -> Path | None:
    """promtool on PATH, else the cached one; None when neither is there."""
    on_path = shutil.which("promtool")
    if on_path is not None:
        return Path(on_path)
    if os.access(cached(), os.X_OK):
        return cached()
    return None


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def fetch() -> tuple[Path | None, str]:
    """Take promtool out of Debian's package into the cache: (its path, "") or (None, why)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None, "apt-get and dpkg-deb are not available (not Debian)"
    with tempfile.TemporaryDirectory(prefix="artstore-promtool-") as tmp:
        work = Path(tmp)
        download = ["apt-get", "download", "-qq", PACKAGE]
        done = _run(download, cwd=work)
        if done.returncode != 0 and os.geteuid() == 0:
            updated = _run(["apt-get", "update", "-qq"])
            if updated.returncode != 0:
                return None, f"apt-get update failed: {updated.stderr.strip()[-300:]}"
            done = _run(download, cwd=work)
        if done.returncode != 0:
            return None, f"apt-get download {PACKAGE} failed: {done.stderr.strip()[-300:]}"
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            return None, f"apt-get download {PACKAGE} left no package"
        unpacked = _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")])
        binary = work / "root" / "usr" / "bin" / "promtool"
        if unpacked.returncode != 0 or not binary.is_file():
            return None, f"no usr/bin/promtool in {debs[0].name}: {unpacked.stderr.strip()}"
        target = cached()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".promtool.{os.getpid()}")
        shutil.copy2(binary, partial)
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent run sees the old binary or the new one
    return target, ""


def promtool_or_skip() -> Path:
    """promtool, fetched if needed; skip the test (fail it under ``CI=true``) without it."""
    import pytest

    found = find()
    if found is not None:
        return found
    fetched, why = fetch()
    if fetched is not None:
        return fetched
    message = f"the monitoring checks need promtool (Debian's {PACKAGE} package): {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def main() -> int:
    found = find()
    if found is None:
        found, why = fetch()
        if found is None:
            print(f"promtool: {why}", file=sys.stderr)
            return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
