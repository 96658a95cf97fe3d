"""Ctrl-C, which a terminal sends to the whole process group, ends in one line: from the stage
alone, not from each of its pool workers, and wherever it lands, imports included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import pytest
from conftest import REPO

# A pool whose two workers sit idle, waiting for work, while the parent handles Ctrl-C as a stage
# does. Each task waits for the other to start, so that two workers have run (and so set up).
POOL_SCRIPT = """
import sys, time
from pathlib import Path
from colorizer.core.parallel import process_pool

def meet(folder, task):
    Path(folder, str(task)).touch()
    while len(list(Path(folder).iterdir())) < 2:
        time.sleep(0.01)

if __name__ == "__main__":
    folder = Path(sys.argv[1])
    try:
        with process_pool() as pool:
            for future in [pool.submit(meet, folder / "tasks", task) for task in range(2)]:
                future.result()
            (folder / "ready").touch()
            time.sleep(60)
    except KeyboardInterrupt:
        print("pool: stopped by SIGINT", file=sys.stderr)
        sys.exit(130)
"""


def test_ctrl_c_to_the_process_group_leaves_the_pool_workers_silent(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    (tmp_path / "tasks").mkdir()
    # A new session, so the signal reaches the group of this script and its workers only; SIGINT
    # at its default, as a terminal gives it (a background shell may have it ignored).
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLORIZER_WORKERS": "2"}, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists():
            assert process.poll() is None and time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines() == ["pool: stopped by SIGINT"]


# Ctrl-C reaching a worker while it is still starting up (a new Python, before its initializer):
# sent to the worker the moment it is spawned.
SPAWN_WINDOW_SCRIPT = """
import os, signal, sys
from colorizer.core.parallel import process_pool

if __name__ == "__main__":
    with process_pool() as pool:
        future = pool.submit(os.getpid)
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGINT)
        print("answered", future.result(timeout=60) in pool._processes)
"""


def test_ctrl_c_while_a_worker_starts_up_is_ignored_by_it(tmp_path):
    script = tmp_path / "spawn.py"
    script.write_text(SPAWN_WINDOW_SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLORIZER_WORKERS": "2"})
    assert result.returncode == 0 and result.stdout == "answered True\n", result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


# ----------------------------------------------------------------- stage scripts, during their imports

# Ctrl-C landing while the script imports the first module beyond the light `run_stage`
# (the params, the pools, TensorFlow: the first second of a stage), made exact by raising
# KeyboardInterrupt from the import itself.
INTERRUPTED_IMPORTS = """
import builtins, runpy, sys

LIGHT = {"sys", "pathlib", "colorizer.core.errors"}
real_import = builtins.__import__

def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
    if globals and globals.get("__name__") == "__main__" and name not in LIGHT:
        raise KeyboardInterrupt
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = interrupted
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("stage", sorted(p.stem for p in (REPO / "stages").glob("*.py")))
def test_ctrl_c_during_a_stage_scripts_imports_is_one_line(stage, tmp_path):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(INTERRUPTED_IMPORTS), f"stages/{stage}.py"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 128 + signal.SIGINT, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"{stage}: stopped by SIGINT")

