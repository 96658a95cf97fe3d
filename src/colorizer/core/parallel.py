"""Process pools for the CPU-bound stages (decode, resize, LAB conversion)."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def workers() -> int:
    """All cores by default; COLORIZER_WORKERS caps it (e.g. on a shared machine)."""
    return max(1, int(os.environ.get("COLORIZER_WORKERS", os.cpu_count() or 1)))


@contextlib.contextmanager
def process_pool() -> Iterator[ProcessPoolExecutor]:
    """A pool for the block. Stopped by an error or a signal, it drops the work not yet started
    and waits only for the tasks under way (short: a chunk of images), so a stopped stage stops
    now and its partial output is removed after its workers last wrote to it."""
    # spawn, not fork: a forked child of a process that imported TensorFlow can deadlock.
    pool = _SigintShieldedPool(workers(), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()


class _SigintShieldedPool(ProcessPoolExecutor):
    """Each worker starts with SIGINT blocked, until its initializer ignores it: a Ctrl-C in the
    tenth of a second while a new Python starts up would otherwise print its traceback. The
    mask is inherited through fork and exec; blocked in the stage only while it spawns, a Ctrl-C
    then waits, and is not lost."""

    def _spawn_process(self):  # CPython's one place that starts a worker (3.9+)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            super()._spawn_process()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _die_with_parent(parent: int) -> None:
    """Workers of a stage that is killed outright (SIGKILL) would otherwise linger, idle, forever.

    The pool starts workers on demand, so the stage can die while one is still starting,
    before it asked for the signal: then its parent is already someone else, and it leaves.

    A terminal's Ctrl-C sends SIGINT to the whole process group, workers included: they ignore
    it, so that only the stage reports it (one line) and stops the pool, instead of each worker
    printing a KeyboardInterrupt traceback beside it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked since it was spawned
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)
