"""MLflow: what is logged (what the UI is fed), and what happens when the store is down."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from project import image_steps

from colorizer.core.workspace import repo_root
from colorizer.tracking.tracker import (
    EXPERIMENT_KIND,
    Tracker,
    TrackingUnavailable,
    changed_params,
    redact,
    run_name,
    runs_page,
    shareable_source,
    tracking_uri,
)


def test_redact_drops_credentials():
    assert redact("https://alice:s3cret@mlflow.example.com/path") == "https://mlflow.example.com/path"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_a_path_source_is_logged_relative_to_the_repo_or_by_its_folder_name(tmp_path):
    root = tmp_path / "repo"
    assert shareable_source("synthetic", root) == "synthetic"
    assert shareable_source("tfds:imagenette/160px", root) == "tfds:imagenette/160px"
    assert shareable_source(str(root / "photos" / "landscapes"), root) == "photos/landscapes"
    assert shareable_source("photos/landscapes", root) == "photos/landscapes"
    assert shareable_source(str(tmp_path / "home" / "alice" / "landscapes"), root) == "landscapes"
    assert shareable_source("../shared/data/landscapes", root) == "landscapes"


def test_a_run_is_named_from_its_commit_and_the_params_that_differ(make_params, monkeypatch):
    import yaml
    from conftest import TINY, merge, repo_params_dict

    from colorizer.tracking import tracker

    committed = yaml.safe_dump(merge(repo_params_dict(), TINY))
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.setattr(tracker, "git_commit", lambda: "3f2a1bc9d0e8")
    monkeypatch.setattr(tracker, "committed_file", lambda name: committed)
    assert run_name(make_params()) == "3f2a1bc baseline"  # paths differ (tmp_path) but say nothing
    changed = make_params({"lr": 0.0001, "train": {"epochs": 4}})
    assert changed_params(changed, committed) == ["lr=0.0001", "train.epochs=4"]
    assert run_name(changed) == "3f2a1bc lr=0.0001 train.epochs=4"
    monkeypatch.setenv("DVC_EXP_NAME", "lower-lr")
    assert run_name(changed) == "lower-lr"


def test_ui_link_opens_the_runs_table_in_model_training_mode():
    assert runs_page("7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert runs_page(None) == "http://127.0.0.1:5000"  # no experiment yet: the front page


def test_default_store_is_at_the_repo_root_even_inside_dvc_temp_copies(make_params, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    copy = tmp_path / "repo/.dvc/tmp/exps/tmpabc123"
    copy.mkdir(parents=True)
    assert repo_root(copy) == tmp_path / "repo"
    config = make_params().mlflow
    assert tracking_uri(config, repo_root(copy)) == f"sqlite:///{tmp_path / 'repo' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(config, tmp_path) == "http://127.0.0.1:5000"


def test_unreachable_store_fails_before_training(train_params, tiny_data, tmp_path, monkeypatch):
    from colorizer.training.train import train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:token@127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    params = train_params()
    with pytest.raises(TrackingUnavailable) as err:
        train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    assert "http://127.0.0.1:9" in str(err.value) and "token" not in str(err.value)
    assert not Path(params.paths.model).exists() and not Path(params.paths.history).exists()


def test_a_damaged_sqlite_store_is_one_line_naming_it(make_params, tmp_path, monkeypatch):
    """In a fresh process: MLflow keeps a store it opened once for the whole process."""
    import dataclasses
    import json
    import subprocess
    import sys

    from colorizer.tracking.tracker import Tracker

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    config = make_params().mlflow
    Tracker(config, tmp_path).check_reachable()  # creates the store
    store.write_bytes(store.read_bytes()[:1000])  # a disk error, a copy cut short
    opening = ("import json, sys\n"
               "from colorizer.core.config import MlflowParams\n"
               "from colorizer.tracking.tracker import Tracker, TrackingUnavailable\n"
               "try:\n    Tracker(MlflowParams(**json.loads(sys.argv[1])), sys.argv[2])\n"
               "except TrackingUnavailable as err:\n    print(err)\n")
    found = subprocess.run([sys.executable, "-c", opening, json.dumps(dataclasses.asdict(config)), str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert found.stdout.startswith(f"MLflow store sqlite:///{store} cannot be opened"), found.stdout + found.stderr[-2000:]
    assert found.stdout.count("\n") == 1, found.stdout  # one line, not SQLAlchemy's SQL and link


def test_store_failing_mid_run_does_not_stop_training(train_params, tiny_data, tmp_path, monkeypatch, capsys):
    import errno
    import importlib
    import json

    from colorizer.training.train import train

    def broken(*args, **kwargs):
        raise ConnectionError("tracking server went away")

    def full_artifact_folder(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mlflow.MlflowClient, "log_image", broken)
    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", broken)
    # The module itself: `mlflow.pyfunc` may still be MLflow's lazy stand-in, replaced on first use.
    monkeypatch.setattr(importlib.import_module("mlflow.pyfunc"), "log_model", full_artifact_folder)
    params = train_params()
    summary = train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    assert summary["epochs"] == 2 and Path(params.paths.model).is_file()
    assert Path(params.paths.train_metrics).is_file()
    output = capsys.readouterr().out
    assert "MLflow logging failed (ConnectionError" in output
    assert "model and DVC metrics were written regardless" in output and "image samples/epoch step 1" in output
    assert "image samples/epoch step 1, image samples/epoch step 2, model. Re-run" in output  # the end of the list
    assert "(`dvc repro -f -s train`)" in output  # the stage to re-run, named
    run_id = json.loads(Path(params.paths.run_info).read_text())["run_id"]
    assert Tracker(params.mlflow, tmp_path).client.get_run(run_id).info.status == "FINISHED"  # as training: not FAILED


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data):
    """One tiny training run and its evaluation (with model registration on), shared by the tests below."""

    from conftest import tiny_params, tracking_store

    from colorizer.evaluation.evaluate import evaluate
    from colorizer.training.train import train

    root = tmp_path_factory.mktemp("trained")
    with tracking_store(root):
        params = tiny_params(root, {"mlflow": {"register": True}})
        train(params, shards=Path(tiny_data.paths.shards), root=root)
        evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
        tracker = Tracker(params.mlflow, root)
        [run] = tracker.client.search_runs([tracker.experiment_id()])
        yield params, tracker, run


def test_experiment_is_marked_for_model_training(trained_run):
    _, tracker, _ = trained_run
    key, kind = EXPERIMENT_KIND
    assert tracker.client.get_experiment(tracker.experiment_id()).tags[key] == kind == "custom_model_development"


def test_curves_lead_and_the_run_stays_under_25_metrics(trained_run):
    _, tracker, run = trained_run
    names = set(run.data.metrics)
    assert len(names) <= 25, sorted(names)
    curves = {f"epoch/{n}" for n in ("train_loss", "train_mse", "val_mse", "train_accuracy", "val_accuracy", "lr")}
    assert curves <= names
    assert [m.step for m in tracker.client.get_metric_history(run.info.run_id, "epoch/val_mse")] == [1, 2]
    assert not any(n.startswith(("data/", "test/per_class")) for n in names)
    # The UI sorts chart sections by the name before the last "/": the curves' section comes first.
    assert sorted({n.rsplit("/", 1)[0] for n in names})[0] == "epoch"
    for metric in ("psnr", "accuracy", "acc5", "auc", "colorfulness_ratio", "cast"):
        assert {f"test/{metric}", f"test/{metric}_gray"} <= names
    assert run.data.metrics["test/colorfulness_ratio_gray"] == pytest.approx(0, abs=1e-3)  # gray has no colour


def test_data_is_a_dataset_input_named_by_source_and_manifest_digest(trained_run, tiny_data):
    import hashlib
    import json

    _, _, run = trained_run
    [data] = run.inputs.dataset_inputs
    manifest = Path(tiny_data.paths.raw) / "manifest.csv"
    assert data.dataset.name == "synthetic"
    assert data.dataset.digest == hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
    profile = json.loads(data.dataset.profile)
    assert profile["train images"] == 30 and profile["skipped"] == 0 and profile["duplicates"] == 0
    assert {t.key: t.value for t in data.tags}["mlflow.data.context"] == "training"


def test_training_grids_show_validation_photos_never_test(train_params, tiny_data):
    """Only evaluate may read the test split; training's per-epoch grids use validation photos."""
    from colorizer.data import dataset
    from colorizer.data import shards as shard_format
    from colorizer.training.train import _fixed_samples

    shards = Path(tiny_data.paths.shards)

    def files(split):
        return {name.decode() if isinstance(name, bytes) else name
                for batch in dataset.evaluation(shards, split, 64, with_info=True).as_numpy_iterator()
                for name in batch["file"]}

    fixed = _fixed_samples(shards, shard_format.read_meta(shards), train_params())
    assert fixed.files and set(fixed.files) <= files("val")
    assert not set(fixed.files) & files("test")


def test_sample_grids_are_step_aware_images(trained_run):
    _, tracker, run = trained_run
    assert image_steps(tracker.client, run.info.run_id) == {("samples/epoch", 1), ("samples/epoch", 2),
                                                                   ("samples/test", 2)}
    assert not tracker.client.list_artifacts(run.info.run_id, "samples")  # no loose PNGs any more
    assert [a.path for a in tracker.client.list_artifacts(run.info.run_id, "data")] == ["data/data_report.json"]


def test_per_class_results_are_one_table(trained_run):
    _, tracker, run = trained_run
    table = tracker.client.load_table(run.info.experiment_id, "evaluation/per_class.json", run_ids=[run.info.run_id])
    assert set(table["class"]) == {"coast", "desert", "forest", "glacier", "mountains"}
    assert {"images", "accuracy", "accuracy_gray", "psnr", "psnr_gray", "cast"} <= set(table.columns)
    assert table["images"].sum() == 10


def test_nothing_machine_specific_is_logged(trained_run):
    params, tracker, run = trained_run
    root = str(Path(params.paths.model).parents[1])
    values = {**run.data.tags, **run.data.params}
    leaks = {k: v for k, v in values.items() if root in v or v.startswith("/")}
    assert not leaks
    assert "repo.root" not in run.data.tags and run.data.params["data.source"] == "synthetic"
    assert not any(key.startswith("paths.") for key in run.data.params)


def test_model_card_describes_the_run_and_its_registered_version(trained_run):
    params, tracker, run = trained_run
    card = run.data.tags["mlflow.note.content"]
    for part in ("trained on synthetic", "30 train", "`lr=0.002`", "| PSNR (dB) |", "Known limits",
                 "Never saw buildings", "32x32"):
        assert part in card, part
    [version] = tracker.client.search_model_versions("name='landscape-colorizer'")
    assert version.description == card
    assert Path(params.paths.model_card).read_text() == card


def test_trained_model_is_an_mlflow_pyfunc_that_colorizes(trained_run):
    import base64
    import io

    import numpy as np
    import pandas as pd
    from conftest import colour_image, image_bytes
    from PIL import Image

    _, tracker, run = trained_run
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["image"]
    photo = colour_image(3, size=50)  # any size: the answer keeps it
    gray = Image.fromarray(photo).convert("L")
    request = pd.DataFrame({"image": [base64.b64encode(image_bytes(np.asarray(gray), "PNG")).decode()]})
    answer = model.predict(request)
    colorized = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["image"][0]))))
    assert colorized.shape == (50, 50, 3)
    versions = tracker.client.search_model_versions("name='landscape-colorizer'")
    assert [v.run_id for v in versions] == [run.info.run_id]


def test_artifacts_sit_beside_the_sqlite_store_not_in_the_working_directory(make_params, tmp_path, monkeypatch):
    from colorizer.tracking.tracker import artifact_root

    config = make_params().mlflow
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert artifact_root(config, tmp_path) == (tmp_path / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere' / 'runs.db'}")
    assert artifact_root(config, tmp_path) == (tmp_path / "elsewhere" / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert artifact_root(config, tmp_path) is None  # the server decides


def test_a_store_on_a_full_disk_is_one_line_saying_so(tmp_path, monkeypatch):
    import sqlite3

    import mlflow

    from colorizer.core.config import params_from_dict
    from conftest import repo_params_dict

    from colorizer.tracking.tracker import TrackingUnavailable, Tracker

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")  # what SQLite raises, with no errno
    monkeypatch.setattr(mlflow, "MlflowClient", full)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(TrackingUnavailable) as raised:
        Tracker(params_from_dict(repo_params_dict()).mlflow, tmp_path)
    assert "no space left on device" in str(raised.value) and "\n" not in str(raised.value)


def test_a_failing_store_call_is_one_warning_without_the_stores_own_traceback(tmp_path, monkeypatch, capfd):
    """A full or locked SQLite store: MLflow's SQL store logs a traceback per failed call."""
    import logging

    from conftest import new_store, repo_params_dict

    from colorizer.core.config import params_from_dict
    from colorizer.tracking.tracker import Tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", new_store(tmp_path))
    tracker = Tracker(params_from_dict(repo_params_dict()).mlflow, tmp_path)

    def failing(*args, **kwargs):
        logging.getLogger("mlflow.store.db.utils").error("SQLAlchemy database error\nTraceback (most recent call last)")
        raise RuntimeError("database or disk is full")
    monkeypatch.setattr(tracker.client, "log_batch", failing)
    tracker.log_metrics({"x": 1.0})
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "WARNING: MLflow logging failed (no space left on device); the stage goes on" in captured.out
    assert tracker.failures == ["metrics"]


def store_uri_command(folder: Path, store: str):
    """`python -m colorizer.evaluation.summary --store-uri` (as `make ui` runs it) with params.yaml's
    mlflow.store set to `store`."""
    import subprocess
    import sys

    import yaml
    from conftest import repo_params_dict

    raw = repo_params_dict()
    raw["mlflow"]["store"] = store
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    return subprocess.run([sys.executable, "-m", "colorizer.evaluation.summary", "--store-uri"], cwd=folder,
                          capture_output=True, text=True, timeout=60)


def test_an_absolute_store_keeps_its_artifacts_beside_it_and_make_ui_opens_it(make_params, tmp_path, monkeypatch):
    import dataclasses

    from colorizer.core.config import ParamError
    from colorizer.tracking.tracker import artifact_root, tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shared = tmp_path / "shared-disk" / "runs.db"
    config = dataclasses.replace(make_params().mlflow, store=str(shared))
    assert tracking_uri(config, tmp_path / "repo") == f"sqlite:///{shared}"
    assert artifact_root(config, tmp_path / "repo") == (shared.parent / "mlartifacts").as_uri()
    for bad in ("", "runs/", " mlflow.db", "sqlite:///runs.db"):
        with pytest.raises(ParamError, match="mlflow.store"):
            dataclasses.replace(config, store=bad).validate()
    shown = store_uri_command(tmp_path, str(shared))  # what `make ui` opens: params.yaml's store, not mlflow.db
    assert shown.stdout == f"sqlite:///{shared}\n", shown.stderr


def test_a_store_that_cannot_be_written_is_one_line_before_any_work(make_params, tmp_path, monkeypatch, capfd):
    from colorizer.tracking.tracker import Tracker, TrackingUnavailable

    store = tmp_path / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{store}").search_experiments(max_results=1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///file:{store}?mode=ro&uri=true")  # a read-only mount
    tracker = Tracker(make_params().mlflow, tmp_path)
    with pytest.raises(TrackingUnavailable, match="cannot be written .*attempt to write a readonly database") as err:
        tracker.check_reachable()  # where train and evaluate start: reading works, writing does not
    assert "\n" not in str(err.value)
    with pytest.raises(TrackingUnavailable, match="cannot be written"):
        tracker.start(make_params())  # the first write, should the store turn read-only after the check
    assert "Traceback" not in "".join(capfd.readouterr())


def test_a_folder_named_as_the_store_is_refused_at_once(make_params, tmp_path, monkeypatch):
    from colorizer.tracking.tracker import Tracker, TrackingUnavailable

    (tmp_path / "runs").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'runs'}")
    with pytest.raises(TrackingUnavailable, match="is a folder, not a SQLite file"):
        Tracker(make_params().mlflow, tmp_path)  # not two minutes of SQLite retries, then "restore it"


def test_the_store_uri_command_refuses_a_bad_store_in_one_line(tmp_path):
    shown = store_uri_command(tmp_path, "")
    assert shown.returncode == 1 and shown.stderr.startswith("summary: params.yaml: mlflow.store must be")
    assert shown.stderr.count("\n") == 1, shown.stderr
