"""A bounded read rate for the auditor, so that ingest keeps its speed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ReadBudget:
    """Token buckets for bytes and files per second, shared by the auditor's threads.

    ``None`` means unbounded. A reader takes what it read *after* reading it: the budget goes
    negative and the next reader waits until it is paid back, so a large file is never split.
    """

    def __init__(
        self,
        bytes_per_s: float | None,
        files_per_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bytes_per_s = bytes_per_s
        self.files_per_s = files_per_s
        self._clock = clock
        self._pause = pause
        self._lock = threading.Lock()
        self._bytes = 0.0
        self._files = 0.0
        self._at = clock()

    @property
    def unbounded(self) -> bool:
        """True when neither rate is bounded."""
        return self.bytes_per_s is None and self.files_per_s is None

    def take(self, *, size: int = 0, files: int = 0) -> None:
        """Account for ``size`` bytes and ``files`` files read; wait while over the rate."""
        if self.unbounded:
            return
        with self._lock:
            now = self._clock()
            elapsed, self._at = now - self._at, now
            wait = 0.0
            if self.bytes_per_s is not None:
                self._bytes = min(self._bytes + elapsed * self.bytes_per_s, self.bytes_per_s)
                self._bytes -= size
                wait = max(wait, -self._bytes / self.bytes_per_s)
            if self.files_per_s is not None:
                self._files = min(self._files + elapsed * self.files_per_s, self.files_per_s)
                self._files -= files
                wait = max(wait, -self._files / self.files_per_s)
        if wait > 0:
            self._pause(wait)
