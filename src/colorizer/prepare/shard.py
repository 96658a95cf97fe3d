"""Stage `shard`: resized RGB -> CIE LAB -> quantised TFRecord shards per split.

Writes the shard folder (format in `data/shards.py`, record schema in
`data/tfrecords.py`). The training split is written in a seeded random order,
so that reading a few shards at a time with a shuffle buffer still mixes all
classes; validation and test keep manifest order. LAB conversion (a table lookup, see lut.py) runs on all cores,
chunk by chunk, reading just those rows of the resized arrays (nothing held for
the whole split).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from colorizer.core import atomic
from colorizer.core.parallel import process_pool
from colorizer.core.progress import Progress
from colorizer.data import resized as resized_format
from colorizer.data import shards as shard_format
from colorizer.data import tfrecords
from colorizer.data.layout import SPLITS
from colorizer.prepare import lut

CHUNK = 32  # images per worker task: large enough to amortise IPC, small enough to stream


def shard(resized: Path, out: Path, num_shards: int, seed: int) -> dict:
    import tensorflow as tf  # only the writer needs it; the workers never import it

    source_meta = resized_format.read_meta(resized)
    meta = {
        "schema_version": tfrecords.SCHEMA_VERSION,
        "image_size": source_meta["image_size"],
        "classes": source_meta["classes"],
        "splits": {},
    }
    labels = {name: i for i, name in enumerate(meta["classes"])}
    lut.table_path()  # build the colour table once, before the workers look for it
    with atomic.output_dir(out) as staging, process_pool() as pool:
        for split in SPLITS:
            rows = resized_format.read_index(resized, split)
            order = _order(len(rows), split, seed)
            files, histogram = _write_split(tf, pool, resized, staging, split, rows, order, labels, num_shards)
            meta["splits"][split] = {"examples": len(rows), "files": files}
            if split == "train":
                np.save(staging / shard_format.AB_HISTOGRAM, histogram)
        meta["ab_histogram"] = shard_format.AB_HISTOGRAM
        shutil.copyfile(Path(resized) / resized_format.DATA_REPORT, shard_format.data_report_path(staging))
        atomic.write_json(staging / shard_format.META, meta)
    return meta


def _order(count: int, split: str, seed: int) -> np.ndarray:
    if split == "train":
        return np.random.default_rng(seed).permutation(count)
    return np.arange(count)


def _write_split(tf, pool, resized, staging, split, rows, order, labels, num_shards) -> tuple[list[str], np.ndarray]:
    groups = np.array_split(order, min(num_shards, len(order)))
    names = [shard_format.file_name(split, k, len(groups)) for k in range(len(groups))]
    # Chunks never straddle two shards, so results can be written in order as they arrive.
    jobs = [(resized, split, chunk, [_example_info(rows[i], labels) for i in chunk])
            for group in groups for chunk in _chunks(group)]
    shard_of_job = [k for k, group in enumerate(groups) for _ in _chunks(group)]
    progress = Progress(f"shard {split}", total=len(order), unit="images")
    writers = [tf.io.TFRecordWriter(str(staging / name)) for name in names]
    histogram = np.zeros(256 * 256, np.int64)
    try:
        for k, (examples, counts) in zip(shard_of_job, pool.map(_examples, jobs)):
            for example in examples:
                writers[k].write(example)
            if counts is not None:
                histogram += counts
            progress.advance(len(examples))
    finally:
        for writer in writers:
            writer.close()
    progress.done()
    return names, histogram.reshape(256, 256)


def _chunks(indices: np.ndarray) -> list[np.ndarray]:
    return [indices[i : i + CHUNK] for i in range(0, len(indices), CHUNK)]


_table: list = []


def _example_info(row: dict, labels: dict) -> tuple[int, str]:
    return labels[row["class"]], row["file"]


def _examples(job):
    """Worker: some rows of a resized split -> serialised Examples, and (train split only) their ab histogram."""
    resized, split, chunk, infos = job
    if not _table:
        _table.append(lut.load_table())
    pixels = resized_format.read_rows(Path(resized) / f"{split}.npy", chunk)
    lightness, ab = lut.quantised_lab(pixels, _table[0])
    counts = None  # the colour prior is the training split's alone
    if split == "train":
        counts = lut.ab_histogram(ab).ravel()
    examples = [tfrecords.serialise(l, a, label, file) for l, a, (label, file) in zip(lightness, ab, infos)]
    return examples, counts
