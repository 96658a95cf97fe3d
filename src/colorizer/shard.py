"""Stage `shard`: resized RGB -> CIE LAB -> quantised TFRecord shards per split.

Files are named `<split>-<k>-of-<n>.tfrecord`; `meta.json` beside them records
the image size, class names, example counts and schema version. The training
split is written in a seeded random order, so that reading a few shards at a
time with a shuffle buffer still mixes all classes; validation and test keep
manifest order. LAB conversion runs on all cores, chunk by chunk, straight from
the memory-mapped resized arrays (nothing held for the whole split).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from colorizer import atomic, resize, tfrecords
from colorizer.lab import rgb_to_lab
from colorizer.layout import SPLITS
from colorizer.parallel import process_pool
from colorizer.progress import Progress

META = "meta.json"
CHUNK = 32  # images per worker task: large enough to amortise IPC, small enough to stream


def shard(resized: Path, out: Path, num_shards: int, seed: int) -> dict:
    import tensorflow as tf  # only the writer needs it; the workers never import it

    source_meta = resize.read_meta(resized)
    meta = {
        "schema_version": tfrecords.SCHEMA_VERSION,
        "image_size": source_meta["image_size"],
        "classes": source_meta["classes"],
        "splits": {},
    }
    labels = {name: i for i, name in enumerate(meta["classes"])}
    with atomic.output_dir(out) as staging, process_pool() as pool:
        for split in SPLITS:
            _, rows = resize.read_split(resized, split)
            order = _order(len(rows), split, seed)
            files = _write_split(tf, pool, resized, staging, split, rows, order, labels, num_shards)
            meta["splits"][split] = {"examples": len(rows), "files": files}
        atomic.write_json(staging / META, meta)
    return meta


def read_meta(shards: Path) -> dict:
    path = Path(shards) / META
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro shard` first")
    return json.loads(path.read_text())


def _order(count: int, split: str, seed: int) -> np.ndarray:
    if split == "train":
        return np.random.default_rng(seed).permutation(count)
    return np.arange(count)


def _write_split(tf, pool, resized, staging, split, rows, order, labels, num_shards) -> list[str]:
    groups = np.array_split(order, min(num_shards, len(order)))
    names = [f"{split}-{k:05d}-of-{len(groups):05d}.tfrecord" for k in range(len(groups))]
    # Chunks never straddle two shards, so results can be written in order as they arrive.
    jobs = [(resized, split, chunk) for group in groups for chunk in _chunks(group)]
    shard_of_job = [k for k, group in enumerate(groups) for _ in _chunks(group)]
    progress = Progress(f"shard {split}", total=len(order), unit="images")
    writers = [tf.io.TFRecordWriter(str(staging / name)) for name in names]
    try:
        for k, (chunk, quantised) in zip(shard_of_job, pool.map(_lab_chunk, jobs)):
            for index, (lightness, ab) in zip(chunk, quantised):
                row = rows[index]
                writers[k].write(tfrecords.serialise(lightness, ab, labels[row["class"]], row["file"]))
            progress.advance(len(chunk))
    finally:
        for writer in writers:
            writer.close()
    progress.done()
    return names


def _chunks(indices: np.ndarray) -> list[np.ndarray]:
    return [indices[i : i + CHUNK] for i in range(0, len(indices), CHUNK)]


_open_arrays: dict = {}


def _lab_chunk(job):
    """Worker: convert rows of a memory-mapped split to quantised LAB."""
    resized, split, chunk = job
    key = (str(resized), split)
    if key not in _open_arrays:
        _open_arrays[key] = np.load(Path(resized) / f"{split}.npy", mmap_mode="r")
    pixels = _open_arrays[key][np.sort(chunk)]
    pixels = pixels[np.argsort(np.argsort(chunk))]  # back to the chunk's (shuffled) order
    lightness, ab = tfrecords.quantise(rgb_to_lab(pixels))
    return chunk, list(zip(lightness, ab))
