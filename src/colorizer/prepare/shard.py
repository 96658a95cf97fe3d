"""Stage `shard`: resized RGB -> CIE LAB -> quantised TFRecord shards per split.

Writes the shard folder (format in `data/shards.py`, record schema in
`data/tfrecords.py`). The training split is written in a seeded random order,
so that reading a few shards at a time with a shuffle buffer still mixes all
classes; validation and test keep manifest order. Each shard file is one task
for the process pool: its worker reads just its rows of the resized arrays,
chunk by chunk, converts them to LAB (a table lookup, see lut.py) and writes
the records itself, so memory stays flat and no pixels or Examples travel
between processes; the parent only collects counts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from colorizer.core import atomic
from colorizer.core.errors import UserError
from colorizer.core.parallel import process_pool
from colorizer.core.progress import Progress
from colorizer.data import resized as resized_format
from colorizer.data import shards as shard_format
from colorizer.data import tfrecords
from colorizer.data.layout import SPLITS
from colorizer.prepare import lut

CHUNK = 32  # images read and converted at a time by a worker: bounded memory


class ShardJob(NamedTuple):
    """One shard file, one pool task."""

    resized: Path
    split: str
    rows: list[int]  # rows of the split's array, in the order they are written
    infos: list[tuple[int, str]]  # (label, file) of each row
    path: str


def shard(resized: Path, out: Path, num_shards: int, seed: int) -> dict:
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
        # Every split's shards are submitted at once: the pool stays busy across splits.
        jobs = {split: _shard_jobs(resized, staging, split, labels, num_shards, seed) for split in SPLITS}
        futures = {split: [pool.submit(_write_shard, job) for job in split_jobs] for split, split_jobs in jobs.items()}
        for split in SPLITS:
            examples = sum(len(job.rows) for job in jobs[split])
            histogram = _collect(split, futures[split], examples)
            meta["splits"][split] = {"examples": examples, "files": [Path(job.path).name for job in jobs[split]]}
            if split == "train":
                np.save(staging / shard_format.AB_HISTOGRAM, histogram.reshape(256, 256))
        meta["ab_histogram"] = shard_format.AB_HISTOGRAM
        shutil.copyfile(Path(resized) / resized_format.DATA_REPORT, shard_format.data_report_path(staging))
        atomic.write_json(staging / shard_format.META, meta)
    return meta


def _order(count: int, split: str, seed: int) -> np.ndarray:
    if split == "train":
        return np.random.default_rng(seed).permutation(count)
    return np.arange(count)


def _shard_jobs(resized: Path, staging: Path, split: str, labels: dict, num_shards: int, seed: int) -> list[ShardJob]:
    rows = resized_format.read_index(resized, split)
    if not rows:
        raise UserError(f"{resized}: the {split} split has no images left (every one was unreadable, colourless or "
                        f"a near duplicate: see {Path(resized) / resized_format.DATA_REPORT})")
    groups = np.array_split(_order(len(rows), split, seed), min(num_shards, len(rows)))
    return [ShardJob(resized, split, [rows[i]["row"] for i in group],
                     [(labels[rows[i]["class"]], rows[i]["file"]) for i in group],
                     str(staging / shard_format.file_name(split, k, len(groups))))
            for k, group in enumerate(groups)]


def _collect(split: str, futures: list, total: int) -> np.ndarray:
    """Wait for one split's shards; the sum of their ab histograms (zeros outside train)."""
    progress = Progress(f"shard {split}", total=total, unit="images")
    histogram = np.zeros(256 * 256, np.int64)
    for future in futures:
        count, counts = future.result()
        if counts is not None:
            histogram += counts
        progress.advance(count)
    progress.done()
    return histogram


_table: list = []


def _write_shard(job: ShardJob) -> tuple[int, np.ndarray | None]:
    """Worker: one shard file from some rows of a resized split -> (records written, their ab
    histogram: the colour prior is the training split's alone, so None for other splits)."""
    histogram = np.zeros(256 * 256, np.int64) if job.split == "train" else None
    with tfrecords.RecordWriter(job.path) as writer:
        for start in range(0, len(job.rows), CHUNK):
            chunk = slice(start, start + CHUNK)
            examples, counts = _examples(job.resized, job.split, job.rows[chunk], job.infos[chunk])
            for example in examples:
                writer.write(example)
            if histogram is not None:
                histogram += counts
    return len(job.rows), histogram


def _examples(resized, split: str, chunk, infos) -> tuple[list[bytes], np.ndarray | None]:
    """Some rows of a resized split -> serialised Examples, and (train split only) their ab histogram."""
    if not _table:
        _table.append(lut.load_table())
    pixels = resized_format.read_rows(Path(resized) / f"{split}.npy", chunk)
    lightness, ab = lut.quantised_lab(pixels, _table[0])
    counts = lut.ab_histogram(ab).ravel() if split == "train" else None
    examples = [tfrecords.serialise(l, a, label, file) for l, a, (label, file) in zip(lightness, ab, infos)]
    return examples, counts
