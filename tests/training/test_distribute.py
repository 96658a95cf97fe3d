"""The same model on other backends and on several devices and machines (all on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, free_port
from project import BIN, runs, stage_env

REPO_STAGES = REPO / "stages"


def run_python(code: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**stage_env(), **(env or {})},
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_model_losses_and_metrics_train_under_jax_fed_by_tf_data(tiny_data):
    result = run_python(f"""
        import sys
        import keras
        sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import repo_model  # params.yaml's network
        from colorizer.model import losses
        from colorizer.evaluation.metrics import ab_accuracy, ab_mse
        from colorizer.model.network import build_model
        assert keras.backend.backend() == "jax"
        assert "tensorflow" not in sys.modules, "model, losses and metrics must not need TensorFlow"
        from colorizer.data import dataset  # the tf.data pipeline stays the data source
        batch = next(dataset.training({str(tiny_data.paths.shards)!r}, 4, 16, True, 0).as_numpy_iterator())
        for loss in ("mse", "classification"):
            bins = losses.ab_bins() if loss == "classification" else None
            config = repo_model(width=8, prior_correction=0.0, output_stride=2)
            model = build_model(config, 32, bins)
            if bins is None:
                model.compile(keras.optimizers.Adam(1e-3), losses.make_loss(loss), metrics=[ab_mse(), ab_accuracy(10.0)])
                logs = model.train_on_batch(*batch, return_dict=True)
                assert set(logs) >= {{"loss", "mse", "accuracy"}}, logs
            else:
                model.compile(keras.optimizers.Adam(1e-3), [None, losses.make_loss(loss, bins)])
                logs = model.train_on_batch(batch[0], [batch[1], batch[1]], return_dict=True)
            print(loss, "ok", float(logs["loss"]))
    """, env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mse ok" in result.stdout and "classification ok" in result.stdout


def train_project(folder: Path, tiny_data, train_overrides: dict) -> Path:
    """A folder where `python stages/train.py` trains on the session's tiny shards."""
    import yaml
    from conftest import TINY, merge, repo_params_dict

    raw = merge(merge(repo_params_dict(), TINY), {"train": train_overrides})
    # params.yaml paths stay inside the project: link the session's shards in.
    (folder / raw["paths"]["shards"]).parent.mkdir(parents=True, exist_ok=True)
    (folder / raw["paths"]["shards"]).symlink_to(Path(tiny_data.paths.shards).resolve())
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    return folder


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path, tiny_data):
    project = train_project(tmp_path, tiny_data, {"strategy": "mirrored", "epochs": 1})
    result = subprocess.run([str(BIN / "python"), str(REPO_STAGES / "train.py")], cwd=project, capture_output=True,
                            text=True, env={**stage_env(), "COLORIZER_LOGICAL_CPUS": "2"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["replicas"] == 2 and summary["epochs"] == 1
    assert (project / "models/model.keras").is_file()


@pytest.mark.slow
def test_two_workers_train_one_model_into_one_mlflow_run(tmp_path, tiny_data):
    project = train_project(tmp_path, tiny_data, {"strategy": "multi_worker", "epochs": 1})
    ports = [free_port(), free_port()]
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
        workers.append(subprocess.Popen(
            [str(BIN / "python"), str(REPO_STAGES / "train.py")], cwd=project, env={**stage_env(), "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]
    assert "epoch 1/1" in outputs[0] and "epoch 1/1" in outputs[1]  # both trained ...
    assert "MLflow run" in outputs[0] and "MLflow run" not in outputs[1]  # ... only the chief logged
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["replicas"] == 2
    assert (project / "models/model.keras").is_file()
    _, found = runs(project)
    assert len(found) == 1 and found[0].data.params["train.strategy"] == "multi_worker"
    # Only the chief wrote outputs ("data" holds the linked shards the project was given).
    assert sorted(p.name for p in project.iterdir()) == ["data", "metrics", "mlartifacts", "mlflow.db", "models",
                                                         "params.yaml"]


def test_multi_worker_needs_tf_config(make_params):
    from colorizer.training import distribute

    os.environ.pop("TF_CONFIG", None)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute._multi_worker()


@pytest.mark.slow
def test_gpu_benchmark_script_needs_no_tensorflow(tmp_path):
    blocker = tmp_path / "blocked" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is not available on this machine')\n")
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parents[2] / "bench/gpu_train.py"), "--backend", "jax",
         "--image-size", "32", "--batch-sizes", "2", "--precisions", "float32", "--networks", "default", "autoencoder",
         "--steps", "1", "--matmul-size", "128", "--out", str(out)],
        env={**stage_env(), "PYTHONPATH": str(blocker.parent)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["backend"] == "jax" and report["results"][0]["images_per_s"] > 0
    assert report["results"][0]["utilisation"] > 0 and report["model"]["arch"] == "hybrid"  # the default, with its MFU
    default, plain = report["results"]
    assert (default["network"], plain["network"]) == ("default", "autoencoder")
    assert plain["training_flops_per_image"] < default["training_flops_per_image"]  # no global branch
