"""The checkpoint folder: train deletes only what it wrote, and resumes only the same code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from colorizer.core.errors import UserError
from colorizer.training import checkpoint
from colorizer.training.checkpoint import CheckpointFolderError


def test_train_refuses_a_checkpoint_folder_holding_other_files_before_any_training(train_params, tiny_data, tmp_path):
    from colorizer.tracking.tracker import Tracker
    from colorizer.training.train import train

    shared = tmp_path / "shared storage"  # docs/scaling.md: checkpoints on shared storage
    (shared / "team").mkdir(parents=True)
    (shared / "notes.txt").write_text("keep me")
    (shared / "team" / "data.csv").write_text("1,2\n")
    params = train_params({"paths": {"checkpoints": str(shared)}})
    with pytest.raises(CheckpointFolderError) as err:
        train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    message = str(err.value)
    assert "paths.checkpoints" in message and str(shared) in message
    assert "notes.txt" in message and "team" in message
    assert (shared / "notes.txt").read_text() == "keep me" and (shared / "team" / "data.csv").is_file()
    assert sorted(p.name for p in shared.iterdir()) == ["notes.txt", "team"]  # not even a marker written
    assert not Path(params.paths.model).exists()
    tracker = Tracker(params.mlflow, tmp_path)
    assert tracker.client.get_experiment_by_name(params.mlflow.experiment) is None  # no MLflow run opened


def test_clear_removes_only_trains_own_files(tmp_path):
    folder = tmp_path / "checkpoints"
    checkpoint.claim(folder)  # new: created, with its marker
    (folder / checkpoint.LAST_EPOCH).mkdir()
    (folder / checkpoint.LAST_EPOCH / checkpoint.STATE).write_text("{}")
    checkpoint.record_attempt(folder, "abc")
    (folder / "added-meanwhile.txt").write_text("someone else's")
    checkpoint.clear(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["added-meanwhile.txt"]

    (folder / "added-meanwhile.txt").unlink()
    checkpoint.claim(folder)  # existing and empty: taken
    checkpoint.clear(folder)
    assert not folder.exists()


def test_clear_leaves_a_folder_without_the_marker_alone(tmp_path):
    folder = tmp_path / "not-ours"
    folder.mkdir()
    (folder / checkpoint.STATE).write_text("{}")  # one of train's names, but no marker: not provably train's
    checkpoint.clear(folder)
    assert (folder / checkpoint.STATE).exists()


@pytest.mark.parametrize("names", [[checkpoint.STATE], [checkpoint.STATE, checkpoint.WEIGHTS, checkpoint.OPTIMIZER],
                                   [checkpoint.ATTEMPT], [checkpoint.LAST_EPOCH]])
def test_files_named_like_trains_in_a_folder_without_its_marker_are_someone_elses(tmp_path, names):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in names:
        (folder / name).write_text("a user's own file")
    with pytest.raises(checkpoint.CheckpointFolderError, match="holds files train did not write") as err:
        checkpoint.claim(folder)
    assert f"only the marker was deleted, delete {folder}" in str(err.value)  # the way out if they are train's
    checkpoint.clear(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert all((folder / name).read_text() == "a user's own file" for name in names)


def test_a_file_is_not_a_checkpoint_folder(tmp_path):
    path = tmp_path / "checkpoints"
    path.write_text("x")
    with pytest.raises(CheckpointFolderError, match="is a file"):
        checkpoint.claim(path)


def test_fingerprint_follows_the_training_code_but_not_other_layers(tmp_path):
    package = tmp_path / "colorizer"
    shutil.copytree(checkpoint.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = checkpoint.code_version(package)
    assert before == checkpoint.code_version(package)

    with open(package / "app" / "colorize.py", "a") as handle:
        handle.write("\n# not run by train\n")
    assert checkpoint.code_version(package) == before

    with open(package / "model" / "losses.py", "a") as handle:
        handle.write("\n# an edit to code train runs\n")
    after = checkpoint.code_version(package)
    assert after != before
    params, meta = {"lr": 0.1, "train.resume": True}, {"splits": {}}
    assert checkpoint.fingerprint(params, meta, before) != checkpoint.fingerprint(params, meta, after)
    assert checkpoint.fingerprint(params, meta, before) == checkpoint.fingerprint({**params, "train.resume": False}, meta, before)


def _saved_checkpoint(folder: Path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    checkpoint.Checkpointer(folder, "key", "run").save(1, model, optimizer, [{"epoch": 1}])
    return model, optimizer


def _edited(path, **values) -> str:
    import json

    return json.dumps({**json.loads(path.read_text()), **values})


@pytest.mark.parametrize("name, damage", [
    ("state.json", lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2])),
    ("state.json", lambda p: p.write_text('{"fingerprint": "key"}')),
    ("state.json", lambda p: p.write_text(_edited(p, progress={"steps": "x"}))),  # parses, wrong types
    ("state.json", lambda p: p.write_text(_edited(p, history="abc"))),
    ("state.json", lambda p: p.write_text(_edited(p, epoch=-1))),
    ("weights.weights.h5", lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
    ("optimizer.npz", lambda p: p.write_bytes(p.read_bytes()[:100])),
])
def test_a_damaged_checkpoint_file_is_one_line_naming_it(tmp_path, name, damage):
    folder = tmp_path / "checkpoints"
    model, optimizer = _saved_checkpoint(folder)
    path = folder / checkpoint.LAST_EPOCH / name
    assert path.exists()
    damage(path)
    with pytest.raises(UserError, match=rf"{path} is damaged .*train\.resume"):
        checkpoint.load(folder, "key", model, optimizer)


def test_a_checkpoint_the_disk_cannot_hold_is_refused_before_writing(tmp_path, monkeypatch):
    """Out of space under h5py, save_weights crashes the process; the check comes first."""
    import collections

    import keras

    from colorizer.core.errors import disk_full

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 20, 20))
    with pytest.raises(OSError) as raised:
        checkpoint.Checkpointer(tmp_path / "ckpt", "key", "run").save(1, model, optimizer, [])
    line = disk_full(raised.value)
    assert line and str(tmp_path / "ckpt" / checkpoint.LAST_EPOCH) in line and "\n" not in line
    assert not (tmp_path / "ckpt" / checkpoint.LAST_EPOCH).exists()
    assert not list((tmp_path / "ckpt").glob(".partial.*"))
