"""A temporary copy of this repository to run the real DVC pipeline in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import yaml
from conftest import REPO, TINY, merge, repo_params_dict

STAGES = ("download", "resize", "shard", "train", "evaluate")
BIN = Path(sys.executable).parent


def make_project(root: Path, overrides: dict) -> Path:
    """Copy the files git sees (tracked or not ignored), set params, commit."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file() and not name.startswith(("tests/", "bench/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    params = merge(merge(repo_params_dict(), TINY), overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "baseline"]):
        subprocess.run(command, cwd=root, check=True, env=git_env())
    return root


def git_env() -> dict:
    return {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t"}


def dvc(project: Path, *args: str, env: dict | None = None) -> str:
    env = {**stage_env(), **(env or {})}
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=project, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{output[-6000:]}"
    return output


def stages_run(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


def runs(project: Path):
    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("landscape-colorization")
    return client, client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def runs_seen_afresh(project: Path) -> list[dict]:
    """The runs of the project's store as a new process sees them: tags, status, metric names.

    For a store that was replaced while this process had it open: MLflow keeps one SQLAlchemy
    engine per URI for the life of the process, whose pooled connection still reads the old file."""
    script = (
        "import json, sys, mlflow\n"
        "client = mlflow.MlflowClient(sys.argv[1])\n"
        "experiment = client.get_experiment_by_name('landscape-colorization')\n"
        "found = client.search_runs([experiment.experiment_id], order_by=['attributes.start_time ASC'])\n"
        "print(json.dumps([{'tags': r.data.tags, 'status': r.info.status, 'metrics': sorted(r.data.metrics)}"
        " for r in found]))\n"
    )
    result = subprocess.run([str(BIN / "python"), "-c", script, f"sqlite:///{project / 'mlflow.db'}"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def image_steps(client, run_id: str) -> set[tuple[str, int]]:
    """(key, step) of each step-aware image of a run (MLflow stores images/<key>+step+<n>+...png)."""
    found = set()
    for artifact in client.list_artifacts(run_id, "images"):
        name = artifact.path.split("/", 1)[1]
        if name.endswith(".png"):
            key, _, step = name.split("+")[:3]
            found.add((key.replace("~", "/"), int(step)))
    return found


def stage_env() -> dict:
    """The environment DVC gives stage commands: the venv first on PATH, no outside MLflow store."""
    env = {**git_env(), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env
