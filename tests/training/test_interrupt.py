"""Runs killed at any point leave nothing that looks complete, and pick up where they stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from project import BIN, dvc, make_project, runs, stage_env, stages_run

pytestmark = pytest.mark.e2e


def start_stage(project: Path, stage: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "python"), f"stages/{stage}.py"], cwd=project, env=stage_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for(condition, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_killed_download_leaves_no_output_and_repro_recovers(tmp_path):
    project = make_project(tmp_path, {"data": {"synthetic_per_class": 200}})
    process = start_stage(project, "download")
    partial = project / "data/.partial.raw"
    wait_for(lambda: len(list(partial.glob("*/*/*.jpg"))) > 20)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (project / "data/raw").exists()  # only the hidden partial folder, never data/raw

    assert stages_run(dvc(project, "repro", "download")) == ["download"]
    assert not partial.exists()
    assert len((project / "data/raw/manifest.csv").read_text().splitlines()) == 1 + 5 * 200


def test_pool_workers_die_with_a_killed_stage(tmp_path):
    import psutil

    project = make_project(tmp_path, {"data": {"synthetic_per_class": 200}})
    process = start_stage(project, "download")
    partial = project / "data/.partial.raw"
    wait_for(lambda: len(list(partial.glob("*/*/*.jpg"))) > 20)
    children = psutil.Process(process.pid).children(recursive=True)
    assert children  # the decode workers
    process.send_signal(signal.SIGKILL)
    process.wait()
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


def test_a_training_process_stopped_by_sigterm_then_sigkill_resumes_into_its_one_run(tmp_path):
    """What `kill`, `timeout`, pod eviction and Slurm preemption send, then what an out-of-memory
    killer sends, to a real `stages/train.py`. SIGTERM: the step under way finishes, a checkpoint
    is saved, the run is marked KILLED, one line, exit 128 + 15. SIGKILL: nothing runs, the last
    checkpoint stands. `dvc repro` then resumes into the same MLflow run. Weight equality with an
    uninterrupted run, a store that lost the run and a kill before the first checkpoint are
    checked in-process, with real signals, in test_resume.py."""
    project = make_project(tmp_path, {"train": {"epochs": 4}, "data": {"synthetic_per_class": 25}})
    dvc(project, "repro", "shard")
    state = project / "models/checkpoints/last_epoch/state.json"
    process = subprocess.Popen([str(BIN / "python"), "stages/train.py"], cwd=project, env=stage_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: state.exists())
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    lines = [line for line in stderr.splitlines() if line.startswith("train:")]
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "resume" in lines[0], stderr[-2000:]
    assert "Traceback" not in stderr
    _, [run] = runs(project)
    assert run.info.status == "KILLED"
    assert not (project / "models/model.keras").exists()
    assert not (project / "metrics/history.csv").exists()  # written once training ends, never partial
    stopped_in = checkpoint_epoch(state)

    process = start_stage(project, "train")
    wait_for(lambda: checkpoint_epoch(state) > stopped_in)  # a later epoch's checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = checkpoint_epoch(state)
    assert 1 <= killed_after < 4
    _, [run] = runs(project)
    assert run.info.status == "RUNNING"  # what a SIGKILL leaves

    output = dvc(project, "repro")
    assert f"resuming after epoch {killed_after}" in output
    assert stages_run(output) == ["train", "evaluate"]
    history = (project / "metrics/history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == [1, 2, 3, 4]
    assert not (project / "models/checkpoints").exists()  # resume state removed once training finished
    client, [run] = runs(project)  # resumed, not duplicated
    assert run.info.status == "FINISHED" and "test/accuracy" in run.data.metrics
    assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_mse")}) == [1, 2, 3, 4]


def checkpoint_epoch(state: Path) -> int:
    """The epoch of the last checkpoint; 0 while it is being replaced."""
    try:
        return json.loads(state.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_training_stops_a_stage_with_one_line(tmp_path, signum):
    """SIGTERM or Ctrl-C to a data stage mid-way, its process pool busy: one line and 128 + the
    signal, no traceback, its partial output removed, and the rerun completes."""
    # 5000 photos: far more than it writes before the signal arrives, even on a fast machine.
    project = make_project(tmp_path, {"data": {"synthetic_per_class": 1000}})
    # A process started in the background by a non-interactive shell (`make test &`, some CI
    # runners) inherits SIGINT ignored, and Python keeps ignoring it: give the stage the default.
    process = subprocess.Popen([str(BIN / "python"), "stages/download.py"], cwd=project, env=stage_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: len(list((project / "data/.partial.raw").glob("*/*/*.jpg"))) > 20)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("download:")]
    assert lines and f"stopped by {signal.Signals(signum).name}" in lines[-1], stderr[-2000:]
    assert not (project / "data/raw").exists() and not (project / "data/.partial.raw").exists()
    if signum == signal.SIGTERM:  # the two leave the same state behind: one rerun of 5000 photos proves it
        assert stages_run(dvc(project, "repro", "download")) == ["download"]
