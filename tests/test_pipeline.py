"""End to end: the real `dvc repro` and `dvc exp run` in a temporary copy of this repository."""

from __future__ import annotations

import json

import pytest

from project import STAGES, dvc, make_project, runs, stages_run

pytestmark = pytest.mark.e2e


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
