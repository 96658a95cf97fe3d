"""MLflow tracking: one run per training run, shared by `train` and `evaluate`.

Store: `MLFLOW_TRACKING_URI` when set; otherwise the SQLite file `mlflow.store`
(default `mlflow.db`, relative to the root of the user's repository, or absolute), with
artifacts in `mlflow.artifacts` beside it, also when DVC runs the stage in a temporary copy
of the repository. `make ui` shows every run.

What the MLflow UI is fed (its chart view sorts sections by the name before the last
`/`, so the names below put the curves first): `epoch/<split>_<m>` and `epoch/lr` per
epoch; `test/<m>` from evaluate with `test/<m>_gray` (the gray baseline) beside it;
`model/*` once. Per-class results are a table (`evaluation/per_class.json`), the data a
dataset input, the sample grids step-aware images (`samples/epoch` on validation photos
during training, `samples/test` from evaluate, both in the `samples` section), so that
runs can be compared side by side. Nothing machine-specific is logged: a shared server
sees no local paths.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from colorizer.core.config import MlflowParams, ParamError, Params, params_from_dict
from colorizer.core.errors import UserError, disk_full, one_line
from colorizer.core.workspace import committed_file, git_commit

ENV_URI = "MLFLOW_TRACKING_URI"
# On a run that stands in for one the store lost: the run id the model came from.
ORIGIN_TAG = "colorizer.origin_run_id"
# What a served model needs, pinned to the versions that trained it.
_SERVING_PACKAGES = ("mlflow", "keras", "tensorflow", "tensorflow-cpu", "numpy", "pillow", "pandas")
# MLflow 3 opens an experiment on its GenAI overview; versions that read this tag open the runs.
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# Shown as the run's description in the UI (and used for the model card).
DESCRIPTION_TAG = "mlflow.note.content"
UI_ADDRESS = "http://127.0.0.1:5000"
# MLflow's SQL store logs each failed database call with its traceback before raising it.
_STORE_LOGGER = "mlflow.store.db.utils"
_NAMED_SOURCES = ("synthetic", "kaggle", "tfds:")


def tracking_uri(config: MlflowParams, root: Path) -> str:
    return os.environ.get(ENV_URI) or f"sqlite:///{Path(root).resolve() / Path(config.store).expanduser()}"


def artifact_root(config: MlflowParams, root: Path) -> str | None:
    """Where new experiments keep artifacts: beside the SQLite database (`mlflow.store`, relative
    to the repo or absolute, as on a shared disk; else the one MLFLOW_TRACKING_URI names); left to
    the server for a server URI.

    MLflow itself would put them in ./mlruns of whatever the working directory is."""
    database = _sqlite_file(tracking_uri(config, root))
    return (Path(database).resolve().parent / config.artifacts).as_uri() if database else None


def run_tags(params: Params, root: Path) -> dict[str, str]:
    tags = {
        "git.commit": git_commit() or "unknown",
        "data.source": shareable_source(params.data.source, root),
        "model.arch": params.model.arch,
    }
    for env, tag in (("DVC_EXP_NAME", "dvc.exp_name"), ("DVC_EXP_BASELINE_REV", "dvc.baseline_rev")):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def shareable_source(source: str, root: Path) -> str:
    """`data.source` as a shared server may see it: a folder or archive inside the repository
    relative to it, one outside it by its last name only (no user names, no mount points)."""
    if source.startswith(_NAMED_SOURCES):
        return source
    path = Path(source).expanduser()
    path = path if path.is_absolute() else Path(root) / path
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return path.name


def shareable_params(params: Params, root: Path) -> dict[str, str]:
    flat = {key: str(value) for key, value in params.flat().items() if not key.startswith("paths.")}
    flat["data.source"] = shareable_source(params.data.source, root)
    return flat


def run_name(params: Params) -> str:
    """The DVC experiment's name when DVC runs one; otherwise what the run is: the short
    commit and the params that differ from the committed params.yaml (`3f2a1bc lr=0.0001`),
    or `3f2a1bc baseline`. MLflow's own names ("traveling-calf-604") tell runs apart by nothing."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    commit = (git_commit() or "uncommitted")[:7]
    changed = changed_params(params, committed_file("params.yaml"))
    return f"{commit} {' '.join(changed) if changed else 'baseline'}"[:250]


def changed_params(params: Params, committed_yaml: str | None) -> list[str]:
    """`key=value` for each param that differs from `committed_yaml` (paths aside: they say
    where outputs go, not what was trained)."""
    import yaml

    if committed_yaml is None:
        return []
    try:
        committed = params_from_dict(yaml.safe_load(committed_yaml) or {}).flat()
    except (ParamError, yaml.YAMLError):
        return []  # the committed file predates today's schema: nothing to compare with
    return [f"{key}={value}" for key, value in sorted(params.flat().items())
            if not key.startswith("paths.") and committed.get(key) != value]


def runs_page(experiment_id: str | None, address: str = UI_ADDRESS) -> str:
    """The UI address that opens the experiment's runs table (model-training mode, not the
    GenAI overview MLflow 3 opens by default)."""
    if experiment_id is None:
        return address
    return f"{address}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


class TrackingUnavailable(UserError, RuntimeError):
    """The MLflow store cannot be reached when a stage starts."""


class Tracker:
    """A thin wrapper over the MLflow client bound to one run.

    Policy when the store fails: an unreachable store stops the stage before any
    work (`check_reachable`); a failure after that (a server going away mid-run)
    never stops training: it is reported once as it happens and summarised by
    `report_failures` at the end, while the model and DVC metrics are written
    as usual. Evaluate, whose record in MLflow is the point, fails instead
    (`unlogged`), so that `dvc repro` runs it again.
    """

    def __init__(self, config: MlflowParams, root: Path, goes_on_without_store: bool = True):
        """`goes_on_without_store=False`: a stage that fails on `unlogged` instead, so the first
        failure is not announced as one the stage goes on after."""
        import mlflow

        # Fail within seconds, not after minutes of HTTP retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        self.mlflow = mlflow
        self.config, self.root = config, Path(root)
        self.uri = tracking_uri(config, root)
        self.display_uri = redact(self.uri)
        # Before the client opens it: SQLite silently creates a missing database file, empty.
        database = _sqlite_file(self.uri)
        self.store_was_missing = bool(database) and not Path(database).exists()
        if database and Path(database).is_dir():
            raise TrackingUnavailable(f"MLflow store {self.display_uri} is a folder, not a SQLite file: name a file "
                                      "in mlflow.store (or MLFLOW_TRACKING_URI)")
        try:  # a SQLite store opens (and migrates) here: a damaged file fails now
            self.client = mlflow.MlflowClient(self.uri)
        except Exception as err:
            self._refuse_if_disk_full(err)
            raise TrackingUnavailable(
                f"MLflow store {self.display_uri} cannot be opened ({redact(one_line(err, 300))}): "
                f"restore {self.config.store} from a backup, or point MLFLOW_TRACKING_URI at another store") from None
        self.run_id: str | None = None
        self.failures: list[str] = []
        self.first_failure = ""
        self.goes_on_without_store = goes_on_without_store

    def check_reachable(self) -> None:
        try:
            self.client.search_experiments(max_results=1)
        except Exception as err:
            self._refuse_if_disk_full(err)
            raise TrackingUnavailable(
                f"MLflow store {self.display_uri} is unreachable ({redact(one_line(err, 300))}). "
                "Start the tracking server, fix MLFLOW_TRACKING_URI, or unset it to log to the local "
                f"{self.config.store}."
            ) from None
        if database := _sqlite_file(self.uri):
            with self._writing():  # before minutes of scoring or training, not after
                _try_sqlite_write(database)

    def _refuse_if_disk_full(self, err: Exception) -> None:
        if disk_full(err):  # not a damaged store, whatever SQLite's SQL says: say so in one line
            raise TrackingUnavailable(f"MLflow store {self.display_uri}: no space left on device (database or disk "
                                      "is full): free some space and run it again") from None

    def experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.config.experiment)
        if experiment is None:
            return self.client.create_experiment(
                self.config.experiment, artifact_location=artifact_root(self.config, self.root),
                tags=dict([EXPERIMENT_KIND]),
            )
        key, kind = EXPERIMENT_KIND
        if experiment.tags.get(key) != kind:  # an experiment made by hand or by an older version
            self.client.set_experiment_tag(experiment.experiment_id, key, kind)
        return experiment.experiment_id

    def existing_experiment_id(self) -> str | None:
        """The experiment's id, or None before the first run (creates nothing)."""
        experiment = self.client.get_experiment_by_name(self.config.experiment)
        return experiment.experiment_id if experiment else None

    def start(self, params: Params, tags: dict[str, str] | None = None) -> str:
        with self._writing():
            return self._start(params, tags)

    def _start(self, params: Params, tags: dict[str, str] | None) -> str:
        tags = {**run_tags(params, self.root), **(tags or {})}
        run = self.client.create_run(self.experiment_id(), run_name=run_name(params), tags=tags)
        self.run_id = run.info.run_id
        entries = [self.mlflow.entities.Param(k, v) for k, v in sorted(shareable_params(params, self.root).items())]
        self.client.log_batch(self.run_id, params=entries)
        return self.run_id

    def resume(self, run_id: str) -> str:
        """Continue an existing run (after an interrupted training, or in evaluate); returns the
        status it had."""
        status = self.client.get_run(run_id).info.status  # fails clearly if the run is not in this store
        self.run_id = run_id
        with self._writing():
            self.client.update_run(run_id, status="RUNNING")
        return status

    @contextlib.contextmanager
    def _writing(self):
        """A stage's first writes (the check at its start, opening its run): a store that can be
        read but not written (a read-only mount, a file of another user) is said in one line."""
        try:
            with _quiet_store_log():
                yield
        except Exception as err:
            self._refuse_if_disk_full(err)
            raise TrackingUnavailable(
                f"MLflow store {self.display_uri} cannot be written ({redact(one_line(err, 300))}): make it "
                "writable, or point MLFLOW_TRACKING_URI at another store") from None

    def has_run(self, run_id: str) -> bool:
        """Whether this store holds `run_id` (and it is not deleted)."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return run.info.lifecycle_stage != "deleted"

    def linked_run(self, lost_run_id: str) -> str | None:
        """The newest run tagged as standing in for `lost_run_id` (ORIGIN_TAG), if any."""
        experiment_id = self.existing_experiment_id()
        if experiment_id is None:
            return None
        found = self.client.search_runs([experiment_id], filter_string=f"tags.`{ORIGIN_TAG}` = '{lost_run_id}'",
                                        order_by=["attributes.start_time DESC"], max_results=1)
        return found[0].info.run_id if found else None

    def missing_run(self, run_id: str, named_by: str) -> str:
        """Why `run_id` (named by `named_by`) is not in this store, as far as it can tell."""
        why = f"MLflow run {run_id} (named by {named_by}) is not in the store {self.display_uri}"
        if self.store_was_missing:
            why += (": that SQLite file did not exist until this stage opened it, so it is new and empty "
                    "(was mlflow.db deleted or moved, or is this a fresh clone with data from a DVC remote?)")
        elif not self.client.search_experiments(max_results=1):
            why += ": the store holds no experiments (a new, empty store?)"
        else:
            why += " (deleted, or logged to another store: check MLFLOW_TRACKING_URI)"
        return why

    def end_abandoned(self, run_id: str) -> bool:
        """Mark `run_id` KILLED if it is still RUNNING (its process died); True if it was."""
        if not self.has_run(run_id) or self.client.get_run(run_id).info.status != "RUNNING":
            return False
        self.client.set_terminated(run_id, "KILLED")
        return True

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        batch = [self.mlflow.entities.Metric(k, float(v), now, step or 0) for k, v in sorted(metrics.items())]
        self._tolerant("metrics", self.client.log_batch, self.run_id, metrics=batch)

    def log_image(self, image, key: str, step: int) -> None:
        """A step-aware image: the UI's chart view shows one `key` per chart, runs side by
        side, with a slider over the steps."""
        self._tolerant(f"image {key} step {step}", self.client.log_image, self.run_id, image, key=key, step=step)

    def log_table(self, table, artifact_file: str) -> None:
        """A pandas DataFrame the UI shows as a table (run page, Artifacts and evaluation views)."""
        self._tolerant(artifact_file, self.client.log_table, self.run_id, table, artifact_file)

    def log_dataset(self, name: str, source: str, digest: str, profile: dict, context: str = "training") -> None:
        """The data as an MLflow dataset input: the runs table's Dataset column names it."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        kind = "local" if not source.startswith(_NAMED_SOURCES) else source.split(":")[0]
        dataset = Dataset(name=name, digest=digest, source_type=kind, source=json.dumps({"uri": source}),
                          profile=json.dumps(profile))
        inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])]
        self._tolerant("dataset", self.client.log_inputs, self.run_id, datasets=inputs)

    def describe(self, text: str) -> None:
        """The run's description and that of every registered version of its model (the model card)."""
        self._tolerant("description", self._describe, text)

    def _describe(self, text: str) -> None:
        self.client.set_tag(self.run_id, DESCRIPTION_TAG, text)
        for version in self.client.search_model_versions(f"run_id='{self.run_id}'"):
            self.client.update_model_version(version.name, version.version, description=text)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self._tolerant(artifact_file, self.client.log_dict, self.run_id, data, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._tolerant(str(path), self.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_model(self, keras_path: Path, example_image: bytes, registered_name: str | None) -> None:
        """Log the model as an MLflow pyfunc (see pyfunc.py), optionally registering a version."""
        self._tolerant("model", self._log_model, keras_path, example_image, registered_name)

    def _log_model(self, keras_path: Path, example_image: bytes, registered_name: str | None) -> None:
        import base64
        import importlib.metadata

        import pandas as pd
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        from colorizer.tracking import pyfunc

        column = Schema([ColSpec("string", pyfunc.COLUMN)])
        installed = {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions()}
        requirements = [f"{name}=={installed[name]}" for name in _SERVING_PACKAGES if name in installed]
        self.mlflow.set_tracking_uri(self.uri)
        with self.mlflow.start_run(run_id=self.run_id), tempfile.TemporaryDirectory() as code:
            package = _served_code(Path(code))
            # MLflow writes this file's absolute path into MLmodel (model_code_path): a temporary
            # copy keeps the user's checkout path off a shared server (loading uses the copy inside the model).
            model_code = Path(shutil.copy2(pyfunc.__file__, Path(code) / "pyfunc.py"))
            self.mlflow.pyfunc.log_model(
                name="model",
                python_model=str(model_code),
                artifacts={pyfunc.ARTIFACT: str(keras_path)},
                code_paths=[str(package)],
                signature=ModelSignature(inputs=column, outputs=column),
                input_example=pd.DataFrame({pyfunc.COLUMN: [base64.b64encode(example_image).decode("ascii")]}),
                pip_requirements=requirements,
                registered_model_name=registered_name,
            )

    def finish(self, status: str = "FINISHED") -> None:
        self._tolerant("run status", self.client.set_terminated, self.run_id, status)

    def report_failures(self, stage: str) -> None:
        if self.failures:
            print(
                f"WARNING: {len(self.failures)} MLflow call(s) failed during this run "
                f"({self.display_uri}); the model and DVC metrics were written regardless. "
                f"Not logged: {', '.join(sorted(set(self.failures)))}. Re-run the stage alone "
                f"(`dvc repro -f -s {stage}`) once the store is back to log it again.",
                flush=True,
            )

    def unlogged(self, stage: str) -> UserError | None:
        """One line for a stage that must not pass for done while MLflow lacks what it logs."""
        if not self.failures:
            return None
        return UserError(f"MLflow store {self.display_uri} did not take {', '.join(sorted(set(self.failures)))} "
                         f"({self.first_failure}): {stage} is not done; run `dvc repro {stage}` again once "
                         "the store is back or has space")

    def _tolerant(self, what: str, call, *args, **kwargs) -> None:
        try:
            with _quiet_store_log():
                call(*args, **kwargs)
        except Exception as err:
            if not self.failures:  # a full disk says so, also where MLflow wraps it in another error
                self.first_failure = "no space left on device" if disk_full(err) else redact(one_line(err))
                if self.goes_on_without_store:
                    print(f"WARNING: MLflow logging failed ({self.first_failure}); the stage goes on", flush=True)
            self.failures.append(what)


@contextlib.contextmanager
def _quiet_store_log():
    """MLflow's SQL store logs a 40-line traceback for each failed call: the one line that
    reports the failure says it."""
    store_log = logging.getLogger(_STORE_LOGGER)
    level = store_log.level
    store_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        store_log.setLevel(level)


def _served_code(folder: Path) -> Path:
    """A copy of the package holding just the layers the served model runs."""
    from colorizer.tracking import pyfunc

    source = Path(pyfunc.__file__).parents[1]
    package = folder / source.name
    package.mkdir()
    shutil.copy2(source / "__init__.py", package)
    for name in pyfunc.SERVED_PACKAGES:
        shutil.copytree(source / name, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return package


def _try_sqlite_write(database: str) -> None:
    """A write rolled back, leaving the store as it was: fails on a read-only store (SQLite
    grants even its write lock to a read-only file, and refuses only the write itself)."""
    import sqlite3

    connection = sqlite3.connect(database, timeout=60, uri=database.startswith("file:"), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE colorizer_write_check (x)")
        connection.execute("ROLLBACK")
    finally:
        connection.close()  # after a refused write, this drops the open transaction


def _sqlite_file(uri: str) -> str | None:
    """The database file of a `sqlite:///` URI; None for any other store."""
    return uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else None


def redact(text: str) -> str:
    """Drop any user:password@ from URIs in `text` before printing or logging it."""
    return re.sub(r"(//)[^/@\s]+@", r"\1", text)
