"""MLflow: what is logged, and what happens when the store is down."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from colorizer.core.workspace import repo_root
from colorizer.tracking.tracker import (
    Tracker,
    TrackingUnavailable,
    flatten_metrics,
    redact,
    tracking_uri,
)


def test_redact_drops_credentials():
    assert redact("https://alice:s3cret@mlflow.example.com/path") == "https://mlflow.example.com/path"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_flatten_metrics_names():
    tree = {"psnr": 25.0, "baseline": {"psnr": 24.0}, "per_class": {"sea (calm)": {"auc": 0.9}}, "nan": float("nan")}
    assert flatten_metrics(tree, "test") == {
        "test/psnr": 25.0, "test/baseline/psnr": 24.0, "test/per_class/sea _calm_/auc": 0.9,
    }


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


def test_store_failing_mid_run_does_not_stop_training(train_params, tiny_data, tmp_path, monkeypatch, capsys):
    from colorizer.training.train import train

    def broken(*args, **kwargs):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(mlflow.MlflowClient, "log_image", broken)
    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", broken)
    params = train_params()
    summary = train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    assert summary["epochs"] == 2 and Path(params.paths.model).is_file()
    assert Path(params.paths.train_metrics).is_file()
    output = capsys.readouterr().out
    assert "MLflow logging failed (ConnectionError" in output
    assert "model and DVC metrics were written regardless" in output and "samples/epoch_001.png" in output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data):
    """One tiny training run (with model registration on), shared by the tests below."""
    import os

    from conftest import tiny_params

    from colorizer.training.train import train

    root = tmp_path_factory.mktemp("trained")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    try:
        params = tiny_params(root, {"mlflow": {"register": True}})
        train(params, shards=Path(tiny_data.paths.shards), root=root)
        tracker = Tracker(params.mlflow, root)
        [run] = tracker.client.search_runs([tracker.experiment_id()])
        yield params, tracker, run
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def test_train_logs_params_curves_samples_and_data_report(trained_run):
    _, tracker, run = trained_run
    assert run.data.params["train.epochs"] == "2" and run.data.params["data.image_size"] == "32"
    assert run.data.metrics["data/images/train"] == 30 and run.data.metrics["data/skipped"] == 0
    artifacts = {a.path for a in tracker.client.list_artifacts(run.info.run_id, "samples")}
    assert artifacts == {"samples/epoch_001.png", "samples/epoch_002.png"}
    assert [a.path for a in tracker.client.list_artifacts(run.info.run_id, "data")] == ["data/data_report.json"]


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
