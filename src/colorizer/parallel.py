"""Process pools for the CPU-bound stages (decode, resize, LAB conversion)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def workers() -> int:
    """All cores by default; COLORIZER_WORKERS caps it (e.g. on a shared machine)."""
    return max(1, int(os.environ.get("COLORIZER_WORKERS", os.cpu_count() or 1)))


def process_pool(initializer=None, initargs=()) -> ProcessPoolExecutor:
    # spawn, not fork: a forked child of a process that imported TensorFlow can deadlock.
    return ProcessPoolExecutor(
        workers(), mp_context=multiprocessing.get_context("spawn"), initializer=initializer, initargs=initargs
    )
