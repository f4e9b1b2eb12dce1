"""Start one program detached from the caller and print its pid.

Run as ``python -I launcher.py`` with a JSON spec on stdin. Going through this short-lived
process makes every service a child of init rather than of whoever called ``ensure_stack``:
the service outlives its caller, and stopping it from another process leaves no zombie behind
that would still look alive. Only the standard library is imported here, on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    """Start the program the JSON on stdin describes, in its own session; print its pid."""
    spec = json.load(sys.stdin)
    with open(spec["log"], "ab") as log:
        process = subprocess.Popen(
            spec["argv"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.get("cwd"),
            env=spec.get("env"),
            user=spec.get("user"),
            start_new_session=True,
        )
    # Leave without waiting: the program is re-parented to init when this process exits.
    print(process.pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
