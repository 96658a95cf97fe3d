"""End to end: the real `dvc repro` and `dvc exp run` in a temporary copy of this repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from conftest import REPO, TINY, merge, repo_params_dict

pytestmark = pytest.mark.e2e
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


def dvc(project: Path, *args: str) -> str:
    env = {**git_env(), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
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


@pytest.fixture(scope="module")
def synthetic_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("project"), {})


def test_repro_runs_every_stage_and_tracks_the_run(synthetic_project):
    project = synthetic_project
    assert stages_run(dvc(project, "repro")) == list(STAGES)

    evaluation = json.loads((project / "metrics/eval.json").read_text())
    for key in ("mse", "accuracy", "acc@5", "auc", "psnr"):
        assert key in evaluation and key in evaluation["baseline"]
    assert set(evaluation["per_class"]) == {"coast", "desert", "forest", "glacier", "mountains"}
    assert evaluation["images"] == 10
    assert (project / "metrics/samples/grid.png").stat().st_size > 1000
    assert (project / "models/model.keras").is_file()
    history = (project / "metrics/history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_mse,val_mse") and len(history) == 3

    client, found = runs(project)
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.001" and run.data.params["model.arch"] == "hybrid"
    assert run.data.tags["data.source"] == "synthetic" and len(run.data.tags["git.commit"]) == 40
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/mse")] == [1, 2]
    assert run.data.metrics["test/accuracy"] == pytest.approx(evaluation["accuracy"])
    assert run.data.metrics["test/baseline/psnr"] == pytest.approx(evaluation["baseline"]["psnr"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert {"samples/epoch_001.png", "samples/epoch_002.png", "samples/grid.png"} <= artifacts

    assert stages_run(dvc(project, "repro")) == []  # everything cached


def test_exp_run_with_new_lr_reruns_only_train_and_evaluate(synthetic_project):
    project = synthetic_project
    output = dvc(project, "exp", "run", "-n", "lower-lr", "-S", "lr=0.0005")
    assert stages_run(output) == ["train", "evaluate"]

    client, found = runs(project)
    assert len(found) == 2
    latest = found[-1]
    assert latest.info.run_name == "lower-lr" and latest.data.tags["dvc.exp_name"] == "lower-lr"
    assert float(latest.data.params["lr"]) == pytest.approx(0.0005)
    assert latest.data.tags["dvc.baseline_rev"] == found[0].data.tags["git.commit"]

    table = json.loads(dvc(project, "exp", "show", "--json"))
    shown = json.dumps(table)
    assert "lower-lr" in shown and "0.0005" in shown


def test_real_photos_through_a_folder_source(tmp_path, shared_photos):
    """The real sample (six classes, Kaggle-style split folders) via data.source."""
    project = make_project(tmp_path, {"data": {"source": str(shared_photos), "max_per_class": 3}})
    dvc(project, "repro")
    report = json.loads((project / "metrics/data_report.json").read_text())
    assert report["images"] == {"train": 18, "val": 18, "test": 18}
    assert report["skipped_count"] == 0
    evaluation = json.loads((project / "metrics/eval.json").read_text())
    assert set(evaluation["per_class"]) == {"buildings", "forest", "glacier", "mountain", "sea", "street"}
    assert evaluation["baseline"]["psnr"] > 15
