"""Checking a local element's files on more than one core.

Hashing many small files is bound by one core's Python: threads do not help (each file hands
the GIL over about ten times), other processes do. A pass of an unbounded auditor over a local
element lends part of each chunk to helper processes, which read the files from the element's
directory through a :class:`LocalStorage` of their own and answer one thing per file: whether
its sidecar and data are exactly the bytes the catalogue records. Every other answer (a
difference, a missing object, a storage error, a helper that died) is checked again in full by
the auditor itself, with its retries and confirmations: helpers can only prove files sound.

The helpers are started once per process (not per pass) and kept for its life.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from storage_workers.backends import LocalStorage
from storage_workers.fixity.checks import Expected, sound_files

_pools: dict[int, ProcessPoolExecutor] = {}
_pools_lock = threading.Lock()
_backends: dict[str, LocalStorage] = {}


def default_processes() -> int:
    """Helper processes when none are configured: one fewer than the cores this process may
    run on (none on one core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cores = os.cpu_count() or 1
    return max(0, cores - 1)


def helper_pool(processes: int) -> ProcessPoolExecutor:
    """The shared pool of ``processes`` helpers (started at first use)."""
    with _pools_lock:
        pool = _pools.get(processes)
        if pool is None:
            # Not forked from this process (it runs threads and an event loop): started from a
            # clean server process instead.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            pool = _pools[processes] = ProcessPoolExecutor(processes, mp_context=context)
        return pool


def discard_pool(pool: ProcessPoolExecutor) -> None:
    """Forget a pool that broke (a helper died): the next chunk starts a new one."""
    with _pools_lock:
        for processes, known in list(_pools.items()):
            if known is pool:
                del _pools[processes]
    pool.shutdown(wait=False, cancel_futures=True)


def sound_local(root: str, files: Sequence[Expected]) -> list[bool]:
    """Run in a helper: :func:`sound_files` over the local element at ``root``."""
    backend = _backends.get(root)
    if backend is None:
        backend = _backends[root] = LocalStorage(root)
    return sound_files(backend, files)


__all__ = ["default_processes", "discard_pool", "helper_pool", "sound_local"]
