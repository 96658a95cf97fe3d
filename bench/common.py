"""Shared helpers of the benchmarks: timing, peak memory of a process tree, tiny projects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = REPO.parent / "shared" / "data" / "landscapes"
RESULTS = REPO / "bench" / "results.json"
BIN = Path(sys.executable).parent


def timed(function, *args, **kwargs):
    """(result, seconds) of one call."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def run_with_peak_memory(command: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """Run a command; return (seconds, peak memory in MiB of it and all its children together).

    Memory is the proportional set size (PSS): a page shared by several processes (the
    memory-mapped colour table, a child between fork and exec) counts once in all, where
    summing RSS would count it in every process (and once read 2x the true peak)."""
    started = time.perf_counter()
    process = psutil.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while process.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started, peak[0] / 2**20


def write_params(folder: Path, overrides: dict) -> None:
    """The repository's params.yaml with overrides, written into a scratch project folder."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        if isinstance(values, dict):
            params[section].update(values)
        else:
            params[section] = values
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stage(name: str) -> list[str]:
    return [str(BIN / "python"), str(REPO / "stages" / f"{name}.py")]


def save_results(section: str, results: dict) -> None:
    """Merge one benchmark's results into bench/results.json."""
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[section] = results
    RESULTS.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def photo_folder(argument: str | None) -> Path:
    folder = Path(argument) if argument else SHARED_PHOTOS
    if not folder.is_dir():
        raise SystemExit(f"no photo folder at {folder}: pass --data DIR (a Kaggle-style <split>/<class>/* folder)")
    return folder


def machine() -> str:
    return f"{psutil.cpu_count(logical=True)} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 matmul GFLOP/s on this machine now (TensorFlow, all its threads)."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    np.asarray(matmul(a, b))
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.asarray(matmul(a, b))
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9
