"""Start one program detached from the caller and print its pid.

Run as ``python -I launcher.py SPEC_JSON``. Going through this short-lived process makes every
service a child of init rather than of whoever called ``ensure_stack`` (a test session, say):
the service outlives its caller, and stopping it from another process leaves no zombie behind
that would still look alive. Only the standard library is imported here, on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Start the program described by ``argv[1]`` in its own session; print its pid."""
    spec = json.loads(argv[1])
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
    sys.exit(main(sys.argv))
