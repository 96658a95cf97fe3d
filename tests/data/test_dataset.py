"""The tf.data pipelines from the shards."""

from pathlib import Path

import numpy as np

from colorizer.data import dataset
from colorizer.data import shards as shard_format


def test_training_batches_are_full_endless_and_in_model_units(tiny_data):
    shards = Path(tiny_data.paths.shards)
    batches = dataset.training(shards, batch_size=8, shuffle_buffer=16, flip=True, seed=0).as_numpy_iterator()
    seen = [next(batches) for _ in range(10)]  # 80 images from a 30-image split: it repeats
    for x, y in seen:
        assert x.shape == (8, 32, 32, 1) and y.shape == (8, 32, 32, 2)
        assert -1 <= x.min() and x.max() <= 1 and np.abs(y).max() <= 1
    # No autotuner: dropping a busy endless iterator at each epoch's end then never stalls for seconds.
    assert dataset.training(shards, 8, 16, True, 0).options().autotune.enabled is False


def test_each_epochs_batches_depend_on_seed_and_epoch_alone(tiny_data):
    """What lets a resumed run see the batches an uninterrupted one saw at that epoch."""
    shards = Path(tiny_data.paths.shards)

    def epoch_batches(seed, epoch):
        batches = dataset.training(shards, 8, 16, True, seed, epoch).as_numpy_iterator()
        return np.concatenate([np.concatenate(next(batches), axis=-1) for _ in range(4)])

    first = epoch_batches(0, 2)
    assert np.array_equal(first, epoch_batches(0, 2))  # rebuilt (as after a resume): identical
    assert not np.array_equal(first, epoch_batches(0, 1))  # other epochs: other orders and flips
    assert not np.array_equal(first, epoch_batches(1, 2))


def test_random_crops_zoom_x_and_y_together_and_repeat_with_the_seed(tiny_data):
    shards = Path(tiny_data.paths.shards)

    def first(crop, seed=0):
        return next(dataset.training(shards, 8, 16, False, seed, crop=crop).as_numpy_iterator())

    plain, cropped = first(1.0), first(0.5)
    assert cropped[0].shape == plain[0].shape and not np.array_equal(cropped[0], plain[0])
    np.testing.assert_array_equal(cropped[0], first(0.5)[0])  # the same seed, the same crops
    assert not np.array_equal(cropped[0], first(0.5, seed=1)[0])
    assert -1 <= cropped[0].min() and cropped[0].max() <= 1 and np.abs(cropped[1]).max() <= 1
    # x and y cut from the same square: a flat-coloured photo stays flat in both after the zoom.
    x, y = cropped
    assert np.corrcoef(np.abs(np.diff(x[..., 0], axis=1)).ravel(), np.abs(np.diff(y[..., 0], axis=1)).ravel())[0, 1] > 0


def test_workers_read_disjoint_shard_files(tiny_data):
    shards = Path(tiny_data.paths.shards)
    meta = shard_format.read_meta(shards)
    assert len(meta["splits"]["train"]["files"]) == 2

    def first_epoch_files(index):
        files = []
        batches = dataset.training(shards, 1, 1, False, 0, worker=(index, 2)).as_numpy_iterator()
        for _ in range(15):
            x, _ = next(batches)
            files.append(x.tobytes())
        return set(files)

    zero, one = first_epoch_files(0), first_epoch_files(1)
    assert zero and one and not zero & one


def test_evaluation_keeps_every_image_once_with_its_label_and_file(tiny_data):
    shards = Path(tiny_data.paths.shards)
    files, labels = [], []
    for batch in dataset.evaluation(shards, "test", 4, with_info=True).as_numpy_iterator():
        files += [f.decode() for f in batch["file"]]
        labels += batch["label"].tolist()
        assert batch["L"].max() <= 100 and batch["ab"].min() >= -128
    assert len(files) == len(set(files)) == 10
    assert sorted(files) == files  # file order: reproducible metrics and sample picks
    assert set(labels) == set(range(5))
