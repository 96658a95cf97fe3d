"""Killed trainings: a resumed run ends where an uninterrupted one would, and no MLflow run stays open.

A SIGKILL is stood in for by an exception train's own clean-up never sees
(`Tracker.finish` does nothing while it flies), raised right after a given
epoch's checkpoint: what the disk and the store hold then is what a killed
process leaves. tests/training/test_interrupt.py kills a real process.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from colorizer.tracking.tracker import ORIGIN_TAG, Tracker
from colorizer.training import checkpoint

EPOCHS = {"train": {"epochs": 3}}


class Killed(BaseException):
    """Stands in for SIGKILL."""


@contextlib.contextmanager
def killed_after_epoch(monkeypatch, epochs_done: int):
    """Kill the training run inside this block right after checkpoint `epochs_done` (0: before the first)."""
    from colorizer.training import train as train_module

    with monkeypatch.context() as patch:
        patch.setattr(Tracker, "finish", lambda self, status="FINISHED": None)  # a killed process closes nothing
        if epochs_done == 0:
            def die(*args, **kwargs):
                raise Killed
            patch.setattr(train_module, "_steps", die)
        else:
            save = checkpoint.Checkpointer.save

            def save_then_die(self, done, *args):
                save(self, done, *args)
                if done == epochs_done:
                    raise Killed
            patch.setattr(checkpoint.Checkpointer, "save", save_then_die)
        with pytest.raises(Killed):
            yield


def trained_weights(model_path) -> list[np.ndarray]:
    from colorizer.model.modelio import load_model

    return [np.asarray(w) for w in load_model(model_path).get_weights()]


def history_epochs(path) -> list[int]:
    with open(path) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def all_runs(params):
    tracker = Tracker(params.mlflow, Path("."))
    experiment = tracker.client.get_experiment_by_name(params.mlflow.experiment)
    return tracker.client, tracker.client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_data):
    """The weights of a 3-epoch run that nothing interrupted."""
    from conftest import tiny_params, tracking_store

    from colorizer.training.train import train

    root = tmp_path_factory.mktemp("uninterrupted")
    with tracking_store(root):
        params = tiny_params(root, EPOCHS)
        train(params, shards=Path(tiny_data.paths.shards), root=root)
        return trained_weights(params.paths.model)


def assert_same_weights(resumed: list[np.ndarray], uninterrupted: list[np.ndarray]) -> None:
    assert len(resumed) == len(uninterrupted)
    # Bit-equal: the data order and flips of each epoch depend on (seed, epoch) only, and the
    # checkpoint restores weights and optimizer exactly (measured: max difference 0.0 on CPU).
    for index, (a, b) in enumerate(zip(resumed, uninterrupted)):
        assert np.array_equal(a, b), f"weight {index}: max difference {np.max(np.abs(a - b))}"


def test_killed_and_resumed_training_ends_with_the_uninterrupted_weights(
        train_params, tiny_data, tmp_path, monkeypatch, capsys, uninterrupted):
    from colorizer.training.train import train

    params, shards = train_params(EPOCHS), Path(tiny_data.paths.shards)
    with killed_after_epoch(monkeypatch, 1):
        train(params, shards=shards, root=tmp_path)
    assert not Path(params.paths.history).exists()  # no partial history that could pass for a result
    assert not Path(params.paths.model).exists()

    train(params, shards=shards, root=tmp_path)
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert history_epochs(params.paths.history) == [1, 2, 3]
    assert_same_weights(trained_weights(params.paths.model), uninterrupted)
    client, runs = all_runs(params)
    assert len(runs) == 1  # resumed into the killed attempt's run
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "epoch/val_mse")] == [1, 2, 3]
    assert not Path(params.paths.checkpoints).exists()


def test_a_resume_whose_run_the_store_lost_continues_in_a_new_linked_run(
        train_params, tiny_data, tmp_path, monkeypatch, capsys, uninterrupted):
    from colorizer.training.train import train

    params, shards = train_params(EPOCHS), Path(tiny_data.paths.shards)
    with killed_after_epoch(monkeypatch, 1):
        train(params, shards=shards, root=tmp_path)
    state = Path(params.paths.checkpoints) / checkpoint.LAST_EPOCH / checkpoint.STATE
    lost = json.loads(state.read_text())["run_id"]

    moved = tmp_path / "elsewhere" / "mlflow.db"  # mlflow.db moved away: SQLite creates an empty one
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{moved}")
    train(params, shards=shards, root=tmp_path)
    output = capsys.readouterr().out
    assert f"MLflow run {lost}" in output and "did not exist until this stage opened it" in output
    assert "continuing from the checkpoint (epoch 1) in a new MLflow run" in output

    client, [run] = all_runs(params)
    assert run.info.run_id != lost and run.data.tags[ORIGIN_TAG] == lost
    assert [m.step for m in client.get_metric_history(run.info.run_id, "epoch/val_mse")] == [1, 2, 3]
    assert json.loads(Path(params.paths.run_info).read_text())["run_id"] == run.info.run_id
    assert_same_weights(trained_weights(params.paths.model), uninterrupted)


def test_a_run_killed_before_its_first_checkpoint_is_marked_killed_by_the_next_attempt(
        train_params, tiny_data, tmp_path, monkeypatch, capsys):
    from colorizer.training.train import train

    params, shards = train_params(), Path(tiny_data.paths.shards)
    with killed_after_epoch(monkeypatch, 0):
        train(params, shards=shards, root=tmp_path)
    _, [abandoned] = all_runs(params)
    assert abandoned.info.status == "RUNNING"  # what a SIGKILL leaves
    assert not Path(params.paths.history).exists()

    train(params, shards=shards, root=tmp_path)
    assert f"marked MLflow run {abandoned.info.run_id} KILLED" in capsys.readouterr().out
    client, runs = all_runs(params)
    assert [r.info.run_id for r in runs][0] == abandoned.info.run_id and len(runs) == 2
    assert runs[0].info.status == "KILLED"
    assert runs[1].info.status == "FINISHED"
    assert history_epochs(params.paths.history) == [1, 2]


def test_a_failing_training_marks_its_run_failed(train_params, tiny_data, tmp_path, monkeypatch):
    from colorizer.training import train as train_module

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(train_module, "_steps", broken)
    params = train_params()
    with pytest.raises(RuntimeError, match="out of memory"):
        train_module.train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    _, [run] = all_runs(params)
    assert run.info.status == "FAILED"


@contextlib.contextmanager
def signal_at_step(monkeypatch, signum: int, at_call: int):
    """A real `signum` sent to this process while training step number `at_call` (1-based) runs."""
    import os

    from colorizer.training import train as train_module

    build = train_module._train_step

    def counting(*args, **kwargs):
        step, calls = build(*args, **kwargs), [0]

        def signalled(*step_args):
            calls[0] += 1
            if calls[0] == at_call:
                os.kill(os.getpid(), signum)
            return step(*step_args)

        return signalled

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "_train_step", counting)
        yield


def test_a_signal_mid_epoch_saves_that_step_marks_the_run_killed_and_resumes_weight_equal(
        train_params, tiny_data, tmp_path, monkeypatch, capsys, uninterrupted):
    """SIGTERM here, SIGINT (Ctrl-C) in the next test: train handles both alike."""
    import signal

    signum = "SIGTERM"
    from colorizer.training.stopping import TrainingStopped
    from colorizer.training.train import train

    params, shards = train_params(EPOCHS), Path(tiny_data.paths.shards)
    steps = -(-tiny_data_examples(tiny_data) // params.train.batch_size)
    assert steps >= 2
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with signal_at_step(monkeypatch, getattr(signal, signum), steps + 1), pytest.raises(TrainingStopped) as stopped:
        train(params, shards=shards, root=tmp_path)  # the signal arrives during epoch 2's first step
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the defaults are back
    assert stopped.value.exit_code == 128 + getattr(signal, signum)
    assert f"stopped by {signum} after epoch 2, step 1" in str(stopped.value) and "resume" in str(stopped.value)
    state = json.loads((Path(params.paths.checkpoints) / checkpoint.LAST_EPOCH / checkpoint.STATE).read_text())
    assert (state["epoch"], state["progress"]["steps"]) == (1, 1)
    _, [run] = all_runs(params)
    assert run.info.status == "KILLED"
    assert not Path(params.paths.model).exists()

    train(params, shards=shards, root=tmp_path)
    assert "resuming at epoch 2, step 2" in capsys.readouterr().out
    assert_same_weights(trained_weights(params.paths.model), uninterrupted)
    assert history_epochs(params.paths.history) == [1, 2, 3]
    _, [run] = all_runs(params)
    assert run.info.status == "FINISHED"


def test_a_signal_during_the_last_step_stops_before_publishing_and_the_rerun_publishes(
        train_params, tiny_data, tmp_path, monkeypatch, capsys, uninterrupted):
    """A preemption's grace period is no time to choose the decoding and log the model: the
    last epoch's checkpoint stands, and the rerun publishes from it."""
    import signal

    from colorizer.training.stopping import TrainingStopped
    from colorizer.training.train import train

    params, shards = train_params(EPOCHS), Path(tiny_data.paths.shards)
    steps = -(-tiny_data_examples(tiny_data) // params.train.batch_size)
    last_step = steps * params.train.epochs
    with signal_at_step(monkeypatch, signal.SIGINT, last_step), pytest.raises(TrainingStopped) as stopped:
        train(params, shards=shards, root=tmp_path)
    assert f"stopped by SIGINT after epoch {params.train.epochs}" in str(stopped.value)
    assert stopped.value.exit_code == 128 + signal.SIGINT
    _, [run] = all_runs(params)
    assert run.info.status == "KILLED" and not Path(params.paths.model).exists()

    train(params, shards=shards, root=tmp_path)
    assert f"resuming after epoch {params.train.epochs}" in capsys.readouterr().out
    assert_same_weights(trained_weights(params.paths.model), uninterrupted)
    _, [run] = all_runs(params)
    assert run.info.status == "FINISHED"


def tiny_data_examples(tiny_data) -> int:
    from colorizer.data import shards as shard_format

    return shard_format.read_meta(Path(tiny_data.paths.shards))["splits"]["train"]["examples"]


def test_a_training_killed_while_publishing_leaves_no_earlier_run_id_beside_its_model(
        train_params, tiny_data, tmp_path, monkeypatch):
    from colorizer.core.errors import UserError
    from colorizer.evaluation.evaluate import evaluate
    from colorizer.training.train import train

    params, shards = train_params(), Path(tiny_data.paths.shards)
    Path(params.paths.run_info).parent.mkdir(parents=True, exist_ok=True)
    Path(params.paths.run_info).write_text('{"run_id": "an-earlier-training"}')  # what the last training left
    Path(params.paths.train_metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(params.paths.train_metrics).write_text("{}")

    def die(*args, **kwargs):
        raise Killed
    with monkeypatch.context() as patch:  # killed while the model is logged to MLflow, the slowest output
        patch.setattr(Tracker, "finish", lambda self, status="FINISHED": None)
        patch.setattr(Tracker, "log_model", die)
        with pytest.raises(Killed):
            train(params, shards=shards, root=tmp_path)
    assert Path(params.paths.model).exists()
    assert not Path(params.paths.run_info).exists() and not Path(params.paths.train_metrics).exists()
    with pytest.raises(UserError, match="run.json not found"):  # not logged into the earlier run
        evaluate(params, shards=shards, root=tmp_path)

    train(params, shards=shards, root=tmp_path)  # resumes after the last epoch and publishes
    _, [run] = all_runs(params)
    assert json.loads(Path(params.paths.run_info).read_text())["run_id"] == run.info.run_id
    assert run.info.status == "FINISHED"


def test_an_opened_run_is_recorded_before_anything_is_logged_into_it(train_params, tiny_data, tmp_path, monkeypatch,
                                                                     capsys):
    """A kill while the data is logged (an upload to a slow server) leaves a run the next attempt closes."""
    from colorizer.training import train as train_module

    params, shards = train_params(), Path(tiny_data.paths.shards)
    recorded = []

    def killed_while_logging_data(tracker, *args):
        recorded.append(checkpoint.previous_attempt(Path(params.paths.checkpoints)) == tracker.run_id)
        raise Killed
    with monkeypatch.context() as patch:
        patch.setattr(Tracker, "finish", lambda self, status="FINISHED": None)
        patch.setattr(train_module, "_log_data", killed_while_logging_data)
        with pytest.raises(Killed):
            train_module.train(params, shards=shards, root=tmp_path)
    assert recorded == [True]
    _, [abandoned] = all_runs(params)
    assert abandoned.info.status == "RUNNING"  # what a SIGKILL leaves

    train_module.train(params, shards=shards, root=tmp_path)
    assert f"marked MLflow run {abandoned.info.run_id} KILLED" in capsys.readouterr().out
    _, runs = all_runs(params)
    assert [r.info.status for r in runs] == ["KILLED", "FINISHED"]
