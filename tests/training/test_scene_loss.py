"""The auxiliary scene-classification loss (`train.scene_weight`): it reaches the global branch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_params

from colorizer.model.network import model_and_loss, split_scene


def scene_step(tmp_path: Path, scene_weight: float):
    """A tiny hybrid, its train step, and a batch whose two classes differ only in brightness."""
    import keras

    from colorizer.training.train import _train_step

    keras.utils.set_random_seed(0)
    params = tiny_params(tmp_path, {"train": {"scene_weight": scene_weight, "batch_size": 8}, "lr": 0.01})
    histogram = np.ones((256, 256), np.int64)
    model, loss = model_and_loss(params, 32, histogram, scene_classes=2)
    optimizer = keras.optimizers.Adam(params.lr)
    optimizer.build(model.trainable_variables)
    step = _train_step(tf.distribute.get_strategy(), model, optimizer, loss, params, 1)
    labels = np.array([0, 1] * 4, np.int64)
    rng = np.random.default_rng(0)
    x = (np.where(labels[:, None, None, None] == 1, 0.5, -0.5) + rng.normal(0, 0.1, (8, 32, 32, 1))).astype(np.float32)
    y = np.zeros((8, 32, 32, 2), np.float32)
    batch = (tf.constant(x), tf.constant(y), tf.constant(labels))
    return model, step, batch, iter(tf.data.Dataset.from_tensors(batch).repeat())  # one iterator: traced once


@pytest.mark.slow
def test_the_scene_loss_is_added_and_trains_the_scene_head(tmp_path):
    with_scene, step, batch, batches = scene_step(tmp_path / "a", 1.0)
    first = np.asarray(step(batches))
    without, plain_step, _, plain_batches = scene_step(tmp_path / "b", 0.0)
    assert split_scene(without, without(batch[0]))[1] is None  # weight 0: no head at all
    plain_first = np.asarray(plain_step(plain_batches))
    # Same seed, same colour loss; the scene cross-entropy of an untrained 2-way head is about log 2 per image.
    assert (first[0] - plain_first[0]) / 8 == pytest.approx(np.log(2), abs=0.35)
    for _ in range(30):
        step(batches)
    scene = split_scene(with_scene, with_scene(batch[0], training=False))[1]
    assert np.array_equal(np.argmax(np.asarray(scene), axis=1), batch[2].numpy())


def test_training_with_the_scene_loss_saves_a_colour_only_model(train_params, tiny_data, tmp_path):
    from colorizer.model.modelio import load_model
    from colorizer.training.train import train

    params = train_params({"train": {"scene_weight": 0.5, "epochs": 1}})
    summary = train(params, shards=Path(tiny_data.paths.shards), root=tmp_path)
    assert np.isfinite(summary["val_mse"])
    assert len(load_model(Path(params.paths.model)).outputs) == 1
