"""evaluate and the MLflow run it logs into: a run the store lost is found before scoring, not after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colorizer.tracking.tracker import ORIGIN_TAG, Tracker


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data):
    """A tiny trained model and its run, in a store of its own."""
    from conftest import tiny_params, tracking_store

    from colorizer.training.train import train

    root = tmp_path_factory.mktemp("trained")
    with tracking_store(root):
        params = tiny_params(root)
        train(params, shards=Path(tiny_data.paths.shards), root=root)
        return root, params, json.loads(Path(params.paths.run_info).read_text())["run_id"]


def evaluate_noting_output_before_scoring(monkeypatch, capsys, params, tiny_data, root) -> tuple[dict, str]:
    """Run evaluate; also return what it had printed when scoring began."""
    from colorizer.evaluation import evaluate as evaluate_module

    printed_before_scoring = []
    score = evaluate_module.score_split

    def noting(*args, **kwargs):
        printed_before_scoring.append(capsys.readouterr().out)
        return score(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "score_split", noting)
    result = evaluate_module.evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
    return result, printed_before_scoring[0]


def runs_in(params, root):
    tracker = Tracker(params.mlflow, root)
    experiment = tracker.client.get_experiment_by_name(params.mlflow.experiment)
    return tracker.client.search_runs([experiment.experiment_id])


def test_evaluate_logs_into_the_training_run(trained, tiny_data, monkeypatch, capsys):
    root, params, run_id = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    result, _ = evaluate_noting_output_before_scoring(monkeypatch, capsys, params, tiny_data, root)
    [run] = [r for r in runs_in(params, root) if r.info.run_id == run_id]
    assert run.info.status == "FINISHED" and ORIGIN_TAG not in run.data.tags
    assert run.data.metrics["test/accuracy"] == pytest.approx(result["accuracy"])


def test_evaluate_with_the_store_moved_away_says_so_before_scoring_and_logs_to_a_linked_run(
        trained, tiny_data, tmp_path, monkeypatch, capsys):
    root, params, lost = trained
    moved = tmp_path / "fresh-clone" / "mlflow.db"  # not there: SQLite will create it empty
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{moved}")
    result, before_scoring = evaluate_noting_output_before_scoring(monkeypatch, capsys, params, tiny_data, root)
    assert f"MLflow run {lost} (named by {params.paths.run_info}) is not in the store" in before_scoring
    assert "did not exist until this stage opened it" in before_scoring
    assert f"the model into a new MLflow run, tagged {ORIGIN_TAG}={lost}" in before_scoring

    [run] = runs_in(params, root)
    assert run.info.run_id != lost and run.data.tags[ORIGIN_TAG] == lost
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test/accuracy"] == pytest.approx(result["accuracy"])
    assert json.loads(Path(params.paths.eval_metrics).read_text())["accuracy"] == pytest.approx(result["accuracy"])
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{moved}")  # servable from the stand-in run, as the lost one was
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert served.metadata.run_id == run.info.run_id

    # A forced re-run (dvc repro -f -s evaluate) logs into that same stand-in run, not yet another one.
    _, again = evaluate_noting_output_before_scoring(monkeypatch, capsys, params, tiny_data, root)
    assert f"the MLflow run {run.info.run_id} an earlier evaluate made for it" in again
    assert [r.info.run_id for r in runs_in(params, root)] == [run.info.run_id]


def test_evaluate_with_the_run_deleted_from_the_store_names_it(trained, tiny_data, monkeypatch, capsys):
    root, params, lost = trained
    store = root / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    Tracker(params.mlflow, root).client.delete_run(lost)
    try:
        _, before_scoring = evaluate_noting_output_before_scoring(monkeypatch, capsys, params, tiny_data, root)
    finally:
        Tracker(params.mlflow, root).client.restore_run(lost)  # the module's other tests expect it
    assert f"MLflow run {lost}" in before_scoring and "deleted, or logged to another store" in before_scoring
    linked = [r for r in runs_in(params, root) if r.data.tags.get(ORIGIN_TAG) == lost]
    assert len(linked) == 1 and linked[0].info.status == "FINISHED"


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_or_missing_model_is_one_line_saying_how_to_get_it_back(trained, tiny_data, monkeypatch,
                                                                           tmp_path, damage):
    import dataclasses

    from colorizer.core.errors import UserError
    from colorizer.evaluation.evaluate import evaluate

    root, params, _ = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    model = tmp_path / "model.keras"
    if damage == "truncated":
        model.write_bytes(Path(params.paths.model).read_bytes()[:1000])
    params = dataclasses.replace(params, paths=dataclasses.replace(params.paths, model=str(model)))
    with pytest.raises(UserError) as raised:
        evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
    message = str(raised.value)
    assert str(model) in message and "\n" not in message
    assert ("dvc checkout train" in message) if damage == "truncated" else ("dvc repro train" in message)


def test_evaluate_interrupted_while_logging_leaves_no_metrics_and_the_run_as_training_left_it(
        trained, tiny_data, monkeypatch):
    from colorizer.evaluation.evaluate import evaluate

    root, params, run_id = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    metrics = Path(params.paths.eval_metrics)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text('{"accuracy": 0.5}')  # an earlier evaluate's

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # what run_stage makes of SIGTERM and SIGINT
    with monkeypatch.context() as patch:
        patch.setattr(Tracker, "log_dict", interrupted)
        with pytest.raises(KeyboardInterrupt):
            evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
    assert not metrics.exists()  # no metrics that pass for a finished evaluate, nor an earlier one's
    [run] = [r for r in runs_in(params, root) if r.info.run_id == run_id]
    assert run.info.status == "FINISHED"  # its training finished: not left RUNNING, nor marked KILLED

    evaluate(params, shards=Path(tiny_data.paths.shards), root=root)  # the rerun finishes it
    [run] = [r for r in runs_in(params, root) if r.info.run_id == run_id]
    assert run.info.status == "FINISHED" and metrics.exists()
    logged = Tracker(params.mlflow, root).client.download_artifacts(run_id, f"metrics/{metrics.name}", str(root))
    assert json.loads(Path(logged).read_text())["accuracy"] == json.loads(metrics.read_text())["accuracy"]


def test_a_store_that_refuses_the_test_metrics_fails_evaluate_and_the_rerun_logs_them(trained, tiny_data,
                                                                                     monkeypatch, capsys):
    import sqlite3

    import mlflow

    from colorizer.core.errors import UserError
    from colorizer.evaluation.evaluate import evaluate

    root, params, run_id = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    metrics = Path(params.paths.eval_metrics)

    def full(*args, **kwargs):  # a full disk, as SQLAlchemy wraps it when it flushes
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as cause:
            raise RuntimeError("(raised as a result of Query-invoked autoflush)\n[SQL: INSERT INTO metrics]") from cause
    with monkeypatch.context() as patch:
        patch.setattr(mlflow.MlflowClient, "log_batch", full)
        with pytest.raises(UserError) as refused:
            evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
    assert "did not take metrics (no space left on device): evaluate is not done" in str(
        refused.value) and "run `dvc repro evaluate` again" in str(refused.value) and "\n" not in str(refused.value)
    assert not metrics.exists()  # so DVC runs evaluate again, rather than keep a run without its test results
    assert "WARNING" not in capsys.readouterr().out  # the refusal is the one line: evaluate does not go on

    result = evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
    [run] = [r for r in runs_in(params, root) if r.info.run_id == run_id]
    assert run.info.status == "FINISHED" and run.data.metrics["test/accuracy"] == pytest.approx(result["accuracy"])


@pytest.mark.parametrize("content", ["[1]", '{"run_id": 5}', '{"run": "x"}', '{"run_id": "../../etc"}'])
def test_a_run_info_file_without_a_run_id_is_one_line_saying_how_to_get_it_back(trained, tiny_data, monkeypatch,
                                                                                 tmp_path, content):
    import dataclasses

    from colorizer.core.errors import UserError
    from colorizer.evaluation.evaluate import evaluate

    root, params, _ = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    run_info = tmp_path / "run.json"
    run_info.write_text(content)
    params = dataclasses.replace(params, paths=dataclasses.replace(params.paths, run_info=str(run_info),
                                                                   eval_metrics=str(tmp_path / "eval.json")))
    with pytest.raises(UserError, match="is damaged.*dvc checkout train"):
        evaluate(params, shards=Path(tiny_data.paths.shards), root=root)
