"""End to end: the real `dvc repro` and `dvc exp run` in a temporary copy of this repository."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from project import (
    BIN,
    STAGES,
    dvc,
    git_env,
    image_steps,
    make_project,
    runs,
    runs_seen_afresh,
    stage_env,
    stages_run,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def synthetic_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("project"), {})


def test_repro_runs_every_stage_and_tracks_the_run(synthetic_project):
    project = synthetic_project
    assert stages_run(dvc(project, "repro")) == list(STAGES)

    evaluation = json.loads((project / "metrics/eval.json").read_text())
    for key in ("mse", "accuracy", "acc@5", "auc", "psnr", "colorfulness", "colorfulness_ratio"):
        assert key in evaluation and key in evaluation["baseline"]
    assert set(evaluation["per_class"]) == {"coast", "desert", "forest", "glacier", "mountains"}
    assert evaluation["images"] == 10
    assert all_finite(evaluation), evaluation
    assert (project / "metrics/samples/grid.png").stat().st_size > 1000
    assert (project / "models/model.keras").is_file()
    history = (project / "metrics/history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,train_mse,val_mse") and len(history) == 3

    client, found = runs(project)
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED"
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert float(run.data.params["lr"]) == params["lr"] and run.data.params["model.arch"] == params["model"]["arch"]
    assert run.data.tags["data.source"] == "synthetic" and len(run.data.tags["git.commit"]) == 40
    assert run.info.run_name == run.data.tags["git.commit"][:7] + " baseline"  # params as committed
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_mse")] == [1, 2]
    assert run.data.metrics["test/accuracy"] == pytest.approx(evaluation["accuracy"])
    assert run.data.metrics["test/psnr_gray"] == pytest.approx(evaluation["baseline"]["psnr"])
    assert {("samples/epoch", 1), ("samples/epoch", 2), ("samples/test", 2)} <= image_steps(client, run.info.run_id)
    assert "Known limits" in (project / "models/model_card.md").read_text()

    assert stages_run(dvc(project, "repro")) == []  # everything cached


def test_evaluate_alone_recovers_when_the_store_lost_the_run(synthetic_project):
    """README "When things go wrong": mlflow.db moved away, `dvc repro -f -s evaluate`."""
    project = synthetic_project
    dvc(project, "repro")
    store, aside = project / "mlflow.db", project / "mlflow.db.moved"
    lost = json.loads((project / "models/run.json").read_text())["run_id"]
    store.rename(aside)
    try:
        output = dvc(project, "repro", "-f", "-s", "evaluate")
        assert stages_run(output) == ["evaluate"]
        assert f"MLflow run {lost}" in output and "did not exist until this stage opened it" in output
        [run] = runs_seen_afresh(project)
        assert run["tags"]["colorizer.origin_run_id"] == lost and run["status"] == "FINISHED"
        assert "test/accuracy" in run["metrics"]
    finally:
        store.unlink(missing_ok=True)
        aside.rename(store)


def all_finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(all_finite(value) for value in tree.values())
    return not isinstance(tree, float) or math.isfinite(tree)


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


def test_params_trained_before_are_restored_from_the_run_cache(synthetic_project):
    project = synthetic_project
    committed = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=project, check=True,
                               capture_output=True, text=True).stdout
    default_lr = yaml.safe_load(committed)["lr"]  # the workspace holds the last experiment's
    output = dvc(project, "exp", "run", "-n", "back-to-default", "-S", f"lr={default_lr}")
    assert stages_run(output) == []  # train and evaluate restored, not re-run
    client, found = runs(project)
    assert len(found) == 2  # no duplicate MLflow run; models/run.json names the original one
    restored = json.loads((project / "models/run.json").read_text())["run_id"]
    assert restored == found[0].info.run_id


@pytest.mark.parametrize("module, changed", [
    ("src/colorizer/model/losses.py", ["train", "evaluate"]),
    ("src/colorizer/tracking/pyfunc.py", ["train", "evaluate"]),  # packaged into the logged model
    ("src/colorizer/prepare/lut.py", ["shard"]),
    # another pinned version (e.g. of the package holding the backbone's weights) retrains;
    # evaluate follows once the new model differs (status lists only the stage whose deps changed)
    ("requirements.lock", ["train"]),
])
def test_editing_a_module_a_stage_runs_invalidates_that_stage(synthetic_project, module, changed):
    project = synthetic_project
    dvc(project, "repro")  # whatever ran before, start from an up-to-date pipeline
    path = project / module
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# an edit\n")
        status = dvc(project, "status")
        assert [s for s in STAGES if f"{s}:" in status] == changed, status
    finally:
        path.write_bytes(original)
    assert "Data and pipelines are up to date" in dvc(project, "status")


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


def test_queued_experiments_log_into_the_repository_store(synthetic_project):
    project = synthetic_project
    for lr in ("0.003", "0.004"):
        dvc(project, "exp", "run", "--queue", "-n", f"queued-{lr}", "-S", f"lr={lr}")
    dvc(project, "queue", "start", "-j", "2")
    wait_for_queue(project)

    client, found = runs(project)
    queued = {run.info.run_name: run for run in found if run.info.run_name.startswith("queued-")}
    assert set(queued) == {"queued-0.003", "queued-0.004"}
    for name, run in queued.items():
        assert run.data.params["lr"] == name.split("-")[1]
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch/train_mse")] == [1, 2]
        assert {("samples/epoch", 2), ("samples/test", 2)} <= image_steps(client, run.info.run_id)
    assert not list(project.glob(".dvc/tmp/exps/*/mlflow.db"))  # nothing stranded in DVC's copies


def test_dvc_experiments_and_mlflow_show_the_same_numbers(synthetic_project):
    """The experiments run in the workspace and in DVC's temporary copies (the queue)."""
    project = synthetic_project
    client, found = runs(project)
    by_name = {run.info.run_name: run for run in found}

    table = json.loads(dvc(project, "exp", "show", "--json"))
    shown = {}
    for baseline in table:
        for experiment in baseline.get("experiments") or []:
            for revision in experiment["revs"]:
                metrics = revision["data"]["metrics"]["metrics/eval.json"]["data"]
                shown[revision["name"]] = metrics
    for name in ("lower-lr", "queued-0.003", "queued-0.004"):
        mlflow_metrics = by_name[name].data.metrics
        assert mlflow_metrics["test/accuracy"] == pytest.approx(shown[name]["accuracy"])
        assert mlflow_metrics["test/psnr"] == pytest.approx(shown[name]["psnr"])


def test_plots_diff_shows_curves_and_sample_images_side_by_side(synthetic_project):
    output = dvc(synthetic_project, "plots", "diff", "queued-0.003", "queued-0.004", "--json")
    plots = json.loads(output)["data"]
    image_revisions = {entry["revisions"][0] for entry in plots["metrics/samples/grid.png"]}
    assert image_revisions == {"queued-0.003", "queued-0.004"}
    assert [entry["revisions"] for entry in plots["Training curves (mse)"]] == [["queued-0.003", "queued-0.004"]]


def test_dvc_remote_round_trip_gives_byte_identical_outputs(synthetic_project, tmp_path):
    project = synthetic_project
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "-d", "shared", str(remote))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results and remote")
    dvc(project, "push")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))
    dvc(clone, "pull")
    for output in ("data/raw", "data/resized", "data/shards", "models/model.keras", "models/run.json", "models/model_card.md",
                   "metrics/history.csv", "metrics/samples"):
        assert digests(project / output) == digests(clone / output), output
    assert "Data and pipelines are up to date" in dvc(clone, "status")


def wait_for_queue(project: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dvc(project, "queue", "status")
        if not any(word in status for word in ("Queued", "Running")):
            assert "Failed" not in status, status
            return
        time.sleep(3)
    raise AssertionError(f"queue did not finish in {timeout} s:\n{status}")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, env=git_env())


def digests(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {p.relative_to(path.parent).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_a_shard_altered_on_disk_is_named_and_repro_checks_the_cached_one_out(synthetic_project):
    """What DVC does with an altered output: `dvc status` lists it, `dvc repro` restores it from the
    cache before training; a stage run by hand names the file instead of a TensorFlow traceback."""
    project = synthetic_project
    dvc(project, "repro")
    shard = project / "data/shards" / json.loads((project / "data/shards/meta.json").read_text())["splits"]["train"]["files"][0]
    original = shard.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    shard.write_bytes(bytes(damaged))
    assert "modified:           data/shards" in dvc(project, "status")
    by_hand = subprocess.run([str(BIN / "python"), "stages/train.py"], cwd=project, env=stage_env(),
                             capture_output=True, text=True)
    assert by_hand.returncode == 1 and "Traceback" not in by_hand.stderr
    assert f"train: data/shards/{shard.name}: corrupt" in by_hand.stderr and "dvc checkout" in by_hand.stderr
    output = dvc(project, "repro")
    assert "Stage 'shard' is cached - skipping run, checking out outputs" in output
    assert shard.read_bytes() == original and stages_run(output) == []
