"""Streaming tf.data pipelines from the LAB shards to model-ready batches.

Batches are in the model's units (`lab.normalise_l`, `lab.AB_SCALE`). Nothing
is ever held for a whole split: shards are read in parallel, shuffled through a
bounded buffer, decoded and batched on the fly, and prefetched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import tensorflow as tf

from colorizer.data import shards as shard_format
from colorizer.data import tfrecords
from colorizer.data.lab import AB_SCALE, normalise_l

AUTOTUNE = tf.data.AUTOTUNE

# tf.data's autotuner off for the training stream: with it on, dropping an epoch's (endless, still
# busy) iterator blocked for ~2 s in 2 to 8 of `make run`'s 25 epochs, a tenth of its training time;
# AUTOTUNE then means a fixed parallelism (the cores, up to 16), which fed 3,100-3,400 images/s here
# with or without the autotuner (bench/README.md), 20x what a training step takes.
_NO_AUTOTUNING = tf.data.Options()
_NO_AUTOTUNING.autotune.enabled = False


def training(shards: Path, batch_size: int, shuffle_buffer: int, flip: bool, seed: int, epoch: int = 0,
             worker: tuple[int, int] = (0, 1), labels: bool = False, crop: float = 1.0):
    """Endless shuffled, augmented (x, y) batches of the train split for one epoch;
    (x, y, class label) with `labels` (for the scene loss, `train.scene_weight`).
    `crop` < 1: each photo is first cut to a random square of `crop`..1 of its area,
    anywhere in it, and resized back (`train.crop`).

    The order, the crops and the flips are a function of (seed, epoch) alone: training reads
    a fresh stream each epoch, so a run resumed at epoch k sees exactly the
    batches an uninterrupted run would. `worker` = (index, count): under
    multi-worker training each worker reads only its own share of the shard
    files. Batches are always full (the stream repeats), so every worker runs
    the same number of steps."""
    files, _, size = shard_format.split_files(shards, "train")
    index, count = worker
    seed = epoch_seed(seed, epoch)
    records = (
        tf.data.Dataset.from_tensor_slices(files)
        .shard(count, index)
        .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=AUTOTUNE)
    )
    to_model = _to_xy_label if labels else _to_xy
    pairs = records.shuffle(shuffle_buffer, seed=seed).map(
        lambda s: to_model(_parse(s, size)), num_parallel_calls=AUTOTUNE
    )
    if flip or crop < 1:
        # Stateless augmentation keyed on a seeded stream: the same seed gives the same augmentation.
        keys = tf.data.Dataset.random(seed=seed).batch(2)
        pairs = tf.data.Dataset.zip(pairs, keys).map(_augment(flip, crop, size), num_parallel_calls=AUTOTUNE)
    return pairs.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE).with_options(_NO_AUTOTUNING)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for one epoch's shuffling and flips, unrelated to its neighbours' (not seed + epoch,
    which would make run (seed=1, epoch=1) replay run (seed=2, epoch=0))."""
    digest = hashlib.sha256(f"{seed}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1  # tf.data seeds are int64: stay well inside


def evaluation(shards: Path, split: str, batch_size: int, with_info: bool = False):
    """Batches of a split in file order, no augmentation. `with_info` yields dicts
    (L and ab in LAB units, label, file name) instead of (x, y) in model units."""
    files, count, size = shard_format.split_files(shards, split)
    parsed = tf.data.TFRecordDataset(files).map(lambda s: _parse(s, size), num_parallel_calls=AUTOTUNE)
    return _batched(parsed if with_info else parsed.map(_to_xy), count, batch_size)


def _batched(dataset, count: int, batch_size: int):
    # Declaring the size lets Keras show "step k/n" and end epochs without a warning.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    return dataset.batch(batch_size).prefetch(AUTOTUNE)


def _parse(serialised, image_size: int):
    example = tfrecords.parse(serialised)
    example["L"] = tf.ensure_shape(example["L"], (image_size, image_size, 1))
    example["ab"] = tf.ensure_shape(example["ab"], (image_size, image_size, 2))
    return example


def _to_xy(example):
    return normalise_l(example["L"]), example["ab"] / AB_SCALE


def _to_xy_label(example):
    return (*_to_xy(example), example["label"])


def _augment(flip: bool, crop: float, size: int):
    """Crop and/or flip x and y together (a label, if any, is unchanged)."""

    def augment(example, key):
        x, y, *label = example
        both = tf.concat([x, y], axis=-1)
        key = tf.cast(key, tf.int32)
        if crop < 1:
            area = tf.random.stateless_uniform([], seed=key + [1, 0], minval=crop, maxval=1.0)
            side = tf.cast(tf.round(size * tf.sqrt(area)), tf.int32)
            both = tf.image.stateless_random_crop(both, tf.stack([side, side, 3]), seed=key + [2, 0])
            both = tf.image.resize(both, [size, size], method="bilinear")
        if flip:
            both = tf.image.stateless_random_flip_left_right(both, seed=key)
        return (both[..., :1], both[..., 1:], *label)

    return augment
