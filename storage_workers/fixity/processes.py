"""Checking a local element's files on more than one core.

Hashing many small files is bound by one core's Python: threads do not help (each file hands
the GIL over about ten times), other processes do. A pass of an unbounded auditor over a local
element lends part of each chunk to helper processes, which read the files from the element's
directory through a :class:`LocalStorage` of their own and answer one thing per file: whether
its sidecar and data are exactly the bytes the catalogue records. Every other answer (a
difference, a missing object, a storage error, a helper that died) is checked again in full by
the auditor itself, with its retries and confirmations: helpers can only prove files sound.

Helpers are started once per process (not per pass), kept for its life, and talked to over a
pipe each: a piece of files out, one answer per file back (no executor's queues and threads
in between: a piece costs this process a send and a receive).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection

from storage_workers.backends import LocalStorage
from storage_workers.fixity.checks import Expected, sound_files

log = logging.getLogger(__name__)

IN_FLIGHT = 2
"""Pieces a helper holds at once: it starts the next one while its last answer travels."""


def default_processes() -> int:
    """Helper processes when none are configured: one fewer than the cores this process may
    run on (none on one core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cores = os.cpu_count() or 1
    return max(0, cores - 1)


class Pieces:
    """A chunk's pieces (lists of indices), taken from the front by helpers and from the back
    by the auditor itself, each by one side only."""

    def __init__(self, pieces: Sequence[list[int]]) -> None:
        self._left = deque(pieces)
        self._lock = threading.Lock()

    def first(self) -> list[int] | None:
        with self._lock:
            return self._left.popleft() if self._left else None

    def last(self) -> list[int] | None:
        with self._lock:
            return self._left.pop() if self._left else None


class Helper:
    """One helper process and the pipe to it; used by one chunk at a time."""

    def __init__(self) -> None:
        # Not forked from this process (it runs threads and an event loop): started from a
        # clean server process instead.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        here, there = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(there,), name="fixity-helper", daemon=True
        )
        self.process.start()
        there.close()
        self._pipe: Connection = here
        self.lock = threading.Lock()
        self.broken = False

    def prove(
        self, root: str, pieces: Pieces, files: Sequence[Expected | None]
    ) -> list[tuple[list[int], list[bool] | None]]:
        """Lend pieces to the helper until none is left; each piece with its answers (None:
        the helper failed, and the piece is to be checked elsewhere). Blocks: run it on a
        thread."""
        answered: list[tuple[list[int], list[bool] | None]] = []
        held: deque[list[int]] = deque()
        with self.lock:
            try:
                while not self.broken:
                    while len(held) < IN_FLIGHT and (piece := pieces.first()) is not None:
                        held.append(piece)  # before sending: a failed send leaves it held
                        self._pipe.send((root, [files[i] for i in piece]))
                    if not held:
                        break
                    answer = self._pipe.recv()
                    answered.append((held.popleft(), answer))
            except (OSError, EOFError) as exc:
                log.warning(
                    "a fixity helper process failed; its files are checked here",
                    extra={"error": repr(exc)},
                )
                self.broken = True
            answered += [(piece, None) for piece in held]
        return answered


_helpers: list[Helper] = []
_helpers_lock = threading.Lock()


def helpers(count: int) -> list[Helper]:
    """``count`` running helpers (started at first use; one that failed is replaced)."""
    with _helpers_lock:
        for helper in [h for h in _helpers if h.broken or not h.process.is_alive()]:
            _helpers.remove(helper)
            helper.process.kill()
        while len(_helpers) < count:
            _helpers.append(Helper())
        return _helpers[:count]


def sound_local(root: str, files: Sequence[Expected]) -> list[bool]:
    """:func:`sound_files` over the local element at ``root`` (what a helper runs)."""
    backend = _backends.get(root)
    if backend is None:
        backend = _backends[root] = LocalStorage(root, create=False)
    return sound_files(backend, files)


_backends: dict[str, LocalStorage] = {}


def _serve(pipe: Connection) -> None:
    """A helper's life: answer pieces until the auditor's process closes the pipe."""
    while True:
        try:
            root, files = pipe.recv()
        except (EOFError, OSError):
            return
        try:
            answer = sound_local(root, files)
        except Exception:  # its element went away, say: nothing proved
            answer = [False] * len(files)
        pipe.send(answer)


__all__ = ["Helper", "Pieces", "default_processes", "helpers", "sound_local"]
