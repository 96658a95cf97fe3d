"""MLflow tracking: one run per training run, shared by `train` and `evaluate`.

Store: `MLFLOW_TRACKING_URI` when set; otherwise the SQLite file `mlflow.store`
(default `mlflow.db`) at the root of the user's repository, with artifacts in
`mlflow.artifacts` beside it, also when DVC runs the stage in a temporary copy
of the repository. `mlflow ui` started at the repo root shows every run.

Metric names: `train/<m>` and `val/<m>` per epoch, `test/<m>` from evaluate,
`test/baseline/<m>` for the gray baseline, `test/per_class/<class>/<m>`.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from colorizer.config import MlflowParams, Params
from colorizer.workspace import git_commit

ENV_URI = "MLFLOW_TRACKING_URI"
# MLflow allows letters, digits and `_-. /` in metric names; class names may hold anything.
_UNSAFE = re.compile(r"[^\w\-. ]")


def tracking_uri(config: MlflowParams, root: Path) -> str:
    return os.environ.get(ENV_URI) or f"sqlite:///{Path(root).resolve() / config.store}"


def artifact_root(config: MlflowParams, root: Path) -> str | None:
    """Where new experiments keep artifacts: beside the SQLite store by default;
    left to the server when MLFLOW_TRACKING_URI points at one."""
    if os.environ.get(ENV_URI):
        return None
    return (Path(root).resolve() / config.artifacts).as_uri()


def run_tags(params: Params, root: Path) -> dict[str, str]:
    tags = {
        "git.commit": git_commit() or "unknown",
        "data.source": params.data.source,
        "model.arch": params.model.arch,
        "repo.root": str(root),
    }
    for env, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def run_name() -> str | None:
    """The DVC experiment's name when DVC runs one; MLflow picks a name otherwise."""
    return os.environ.get("DVC_EXP_NAME") or None


def flatten_metrics(tree: dict, prefix: str) -> dict[str, float]:
    """{"baseline": {"psnr": 24.1}} -> {"<prefix>/baseline/psnr": 24.1}; NaN is left out."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}/{_UNSAFE.sub('_', str(key))}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, (int, float)) and value == value:
            flat[name] = float(value)
    return flat


class Tracker:
    """A thin wrapper over the MLflow client bound to one run."""

    def __init__(self, config: MlflowParams, root: Path):
        import mlflow

        self.mlflow = mlflow
        self.config, self.root = config, Path(root)
        self.uri = tracking_uri(config, root)
        self.client = mlflow.MlflowClient(self.uri)
        self.run_id: str | None = None

    def experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.config.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return self.client.create_experiment(
            self.config.experiment, artifact_location=artifact_root(self.config, self.root)
        )

    def start(self, params: Params) -> str:
        run = self.client.create_run(self.experiment_id(), run_name=run_name(), tags=run_tags(params, self.root))
        self.run_id = run.info.run_id
        flat = params.flat()
        self.client.log_batch(
            self.run_id, params=[self.mlflow.entities.Param(k, str(v)) for k, v in sorted(flat.items())]
        )
        return self.run_id

    def resume(self, run_id: str) -> None:
        self.client.get_run(run_id)  # fails clearly if the run is not in this store
        self.run_id = run_id

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        batch = [self.mlflow.entities.Metric(k, float(v), now, step or 0) for k, v in sorted(metrics.items())]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_image(self, image, artifact_file: str) -> None:
        self.client.log_image(self.run_id, image, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def run_url(self) -> str:
        experiment = self.client.get_run(self.run_id).info.experiment_id
        return f"#/experiments/{experiment}/runs/{self.run_id}"
