"""DVC's own cost: a no-op `dvc repro`, and what `dvc exp run -S lr=...` re-runs.

Runs in a temporary copy of the repository with tiny params (the pipeline's own
work is not what is measured here). Goal: only train and evaluate re-run.

    python bench/dvc_overhead.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, REPO, machine, save_results, write_params

STAGES = ("download", "resize", "shard", "train", "evaluate")
TINY = {"data": {"image_size": 32, "synthetic_per_class": 10, "synthetic_size": 48},
        "model": {"width": 8}, "train": {"epochs": 1, "batch_size": 8}}


def dvc(project: Path, *args: str) -> str:
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=project, capture_output=True, text=True,
                            # PYTHONPATH: the stages import the copy's own package, whatever the venv's editable install points at
                            env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(project), "TF_CPP_MIN_LOG_LEVEL": "2",
                                 "PYTHONPATH": str(project / "src"),
                                 "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                                 "GIT_COMMITTER_EMAIL": "b@b"})
    if result.returncode:
        raise RuntimeError(f"dvc {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout + result.stderr


def copy_project(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if not name.startswith(("tests/", "bench/")):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    write_params(target, TINY)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(command, cwd=target, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                            "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin", "HOME": str(target)})


def run() -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        copy_project(project)
        dvc(project, "repro")
        no_op = []
        for _ in range(3):
            started = time.perf_counter()
            output = dvc(project, "repro")
            no_op.append(time.perf_counter() - started)
            assert not [s for s in STAGES if f"Running stage '{s}'" in output], output
        output = dvc(project, "exp", "run", "-S", "lr=0.0005")
    rerun = [s for s in STAGES if f"Running stage '{s}'" in output]
    return {
        "machine": machine(),
        "noop_repro_seconds": statistics.median(no_op),
        "stages_rerun_after_lr_change": rerun,
        "goal_only_train_and_evaluate_met": rerun == ["train", "evaluate"],
    }


def main() -> None:
    result = run()
    save_results("dvc", result)
    print(f"no-op dvc repro: {result['noop_repro_seconds']:.2f} s (median of 3)")
    print(f"dvc exp run -S lr=0.0005 re-ran: {', '.join(result['stages_rerun_after_lr_change'])}")


if __name__ == "__main__":
    main()
