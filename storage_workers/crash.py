"""Crash points for the crash-safety tests: a no-op unless ``ARTSTORE_CRASH_AT`` names one."""

from __future__ import annotations

import os
import signal

CRASH_VARIABLE = "ARTSTORE_CRASH_AT"


def crash_point(step: str) -> None:
    """Kill this process with SIGKILL (no cleanup, like a power cut) if told to at ``step``."""
    if os.environ.get(CRASH_VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGKILL)
