"""A full disk, on a real small file system: every stage ends with one line (the stage, the output
it was writing, what it had written and the space left), leaves nothing that passes for its
output, and completes once there is room."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from project import BIN, dvc, make_project, stage_env

pytestmark = pytest.mark.e2e

# The stage, the stages it needs first, and the paths it writes, moved onto the small file system.
CASES = {
    "download": ((), ("raw",)),
    "resize": (("download",), ("resized",)),
    "shard": (("resize",), ("shards",)),
    "train": (("shard",), ("model",)),
    "evaluate": (("train",), ("eval_metrics", "samples", "model_card")),
}
SMALL = "small"  # a folder of the project, mounted as a 16 KiB tmpfs


@pytest.fixture
def small_disk(tmp_path):
    """Mounts a 16 KiB tmpfs at <project>/small; `grow()` gives it room. Needs root (or CAP_SYS_ADMIN)."""
    project = tmp_path / "project"
    folder = project / SMALL
    folder.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'}; it needs root)")
    try:
        yield project, lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def run_stage(project: Path, stage: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), f"stages/{stage}.py"], cwd=project, env=stage_env(),
                          capture_output=True, text=True)


@pytest.mark.parametrize("stage", list(CASES))
def test_a_full_disk_is_one_line_and_the_rerun_completes(small_disk, stage):
    project, grow = small_disk
    before, moved = CASES[stage]
    paths = {key: f"{SMALL}/{key}" + (".json" if key == "eval_metrics" else ".md" if key == "model_card"
                                       else ".keras" if key == "model" else "") for key in moved}
    make_project(project, {"paths": paths})
    for earlier in before:
        dvc(project, "repro", earlier)
    if stage == "train":  # the model is the last of train's writes: check it is the one refused
        assert not any((project / SMALL).iterdir())

    failed = run_stage(project, stage)
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.startswith(f"{stage}: ") and "/s, " not in line]
    assert len(lines) == 1, failed.stderr[-2000:]  # (progress lines aside)
    assert lines[0].startswith(f"{stage}: no space left on device writing {SMALL}/") and "left on its file system" in lines[0]
    left = [p.relative_to(project).as_posix() for p in (project / SMALL).rglob("*") if p.is_file()]
    assert not [name for name in left if ".partial." in name], f"partial outputs left behind: {left}"
    # Each output is written whole or not at all; the stage's metrics file, written last, is absent.
    own_metrics = {"train": "metrics/train.json", "evaluate": "metrics/eval.json"}.get(stage)
    assert own_metrics is None or not (project / own_metrics).exists()

    grow()
    again = run_stage(project, stage)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all((project / path).exists() for path in paths.values())
