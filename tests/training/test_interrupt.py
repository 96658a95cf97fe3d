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


def test_killed_training_resumes_from_its_last_epoch_into_the_same_run(tmp_path):
    project = make_project(tmp_path, {"train": {"epochs": 4}, "data": {"synthetic_per_class": 25}})
    dvc(project, "repro", "shard")
    process = start_stage(project, "train")
    state = project / "models/checkpoints/last_epoch/state.json"
    wait_for(lambda: state.exists())
    process.send_signal(signal.SIGKILL)  # mid-way through the second epoch
    process.wait()
    killed_after = json.loads(state.read_text())["epoch"]
    assert 1 <= killed_after < 4
    assert not (project / "models/model.keras").exists()
    assert not (project / "metrics/history.csv").exists()  # written once training ends, never partial

    output = dvc(project, "repro")
    assert f"resuming after epoch {killed_after}" in output
    assert stages_run(output) == ["train", "evaluate"]
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["epochs"] == 4
    history = (project / "metrics/history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == [1, 2, 3, 4]
    assert not (project / "models/checkpoints").exists()  # resume state removed once training finished

    client, found = runs(project)
    assert len(found) == 1  # resumed, not duplicated
    run = found[0]
    assert run.info.status == "FINISHED"
    assert sorted({m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_mse")}) == [1, 2, 3, 4]
    assert "test/accuracy" in run.data.metrics


def test_training_killed_before_its_first_checkpoint_leaves_no_run_running(tmp_path):
    project = make_project(tmp_path, {"train": {"epochs": 2}, "data": {"synthetic_per_class": 25}})
    dvc(project, "repro", "shard")
    process = start_stage(project, "train")
    folder = project / "models/checkpoints"
    wait_for(lambda: (folder / "attempt.json").exists())  # the run is open, the first epoch under way
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (folder / "last_epoch").exists(), "killed too late for this test: after the first checkpoint"
    _, [abandoned] = runs(project)
    assert abandoned.info.status == "RUNNING"  # what the kill leaves

    output = dvc(project, "repro")
    assert f"marked MLflow run {abandoned.info.run_id} KILLED" in output
    _, found = runs(project)
    assert [run.info.run_id for run in found][0] == abandoned.info.run_id
    assert [run.info.status for run in found] == ["KILLED", "FINISHED"]


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


def test_sigterm_stops_training_with_one_line_and_the_rerun_resumes_weight_equal(tmp_path):
    """What `kill`, `timeout`, pod eviction and Slurm preemption send: the step under way finishes,
    a checkpoint is saved, the run is marked KILLED, and the exit status says SIGTERM."""
    overrides = {"train": {"epochs": 3}, "data": {"synthetic_per_class": 25}}
    project = make_project(tmp_path / "stopped", overrides)
    dvc(project, "repro", "shard")
    process = subprocess.Popen([str(BIN / "python"), "stages/train.py"], cwd=project, env=stage_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state = project / "models/checkpoints/last_epoch/state.json"
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

    output = dvc(project, "repro")
    assert "train: resuming" in output and stages_run(output) == ["train", "evaluate"]
    _, [run] = runs(project)
    assert run.info.status == "FINISHED"

    uninterrupted = make_project(tmp_path / "uninterrupted", overrides)
    dvc(uninterrupted, "repro", "train")
    assert weights(project / "models/model.keras") == weights(uninterrupted / "models/model.keras")


def weights(path: Path) -> list[bytes]:
    from colorizer.model.modelio import load_model

    return [w.tobytes() for w in load_model(path).get_weights()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_outside_training_stops_a_stage_with_one_line(tmp_path, signum):
    """SIGTERM or Ctrl-C to a data stage mid-way, its process pool busy: one line and 128 + the
    signal, no traceback, its partial output removed, and the rerun completes."""
    # 5000 photos: far more than it writes before the signal arrives, even on a fast machine.
    project = make_project(tmp_path, {"data": {"synthetic_per_class": 1000}})
    process = subprocess.Popen([str(BIN / "python"), "stages/download.py"], cwd=project, env=stage_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(list((project / "data/.partial.raw").glob("*/*/*.jpg"))) > 20)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("download:")]
    assert lines and f"stopped by {signal.Signals(signum).name}" in lines[-1], stderr[-2000:]
    assert not (project / "data/raw").exists() and not (project / "data/.partial.raw").exists()
    assert stages_run(dvc(project, "repro", "download")) == ["download"]
