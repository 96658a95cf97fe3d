"""The format of the shard folder, written by `shard` and read by `train` and `evaluate`.

`<split>-<k>-of-<n>.tfrecord` files (the record schema is in `tfrecords.py`);
`meta.json` with the image size, class names, example counts and file names per
split and the schema version; `ab_histogram.npy`, the training split's colour
counts; `data_report.json`, every image left out on the way here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from colorizer.core.errors import UserError, read_stage_json
from colorizer.data import tfrecords

META = "meta.json"
# Counts of the training split's quantised ab values, (256, 256) indexed [a + 128, b + 128]:
# the colour prior that class rebalancing (losses.py) needs, gathered while the pixels stream past.
AB_HISTOGRAM = "ab_histogram.npy"
# The data report travels with the data, so whoever trains on these shards finds it here.
DATA_REPORT = "data_report.json"


def file_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def read_meta(shards: Path) -> dict:
    return read_stage_json(Path(shards) / META, "shard")


def split_files(shards: Path, split: str) -> tuple[list[str], int, int]:
    """(paths of the split's shard files, example count, image size)."""
    meta = read_meta(shards)
    files = [str(Path(shards) / name) for name in meta["splits"][split]["files"]]
    return files, meta["splits"][split]["examples"], meta["image_size"]


def read_ab_histogram(shards: Path) -> np.ndarray:
    return np.load(Path(shards) / read_meta(shards)["ab_histogram"])


def data_report_path(shards: Path) -> Path:
    return Path(shards) / DATA_REPORT


class CorruptShard(UserError, ValueError):
    """A shard file is truncated, corrupt or not what meta.json says."""


def check(shards: Path, splits: tuple[str, ...]) -> None:
    """Every record of the splits' shard files is whole and the counts match meta.json; else
    CorruptShard naming the file, before hours of training find it."""
    meta = read_meta(shards)
    for split in splits:
        files, expected, _ = split_files(shards, split)
        found = 0
        for name in files:
            if not Path(name).is_file():
                raise CorruptShard(_fix(f"{name}: missing", shards))
            records, problem = tfrecords.check_file(name)
            if problem:
                raise CorruptShard(_fix(f"{name}: {problem}", shards))
            found += records
        if found != expected:
            raise CorruptShard(_fix(f"{Path(shards) / META}: the {split} split's files hold {found} records, "
                                    f"not the {expected} it lists (schema {meta.get('schema_version')})", shards))


@contextlib.contextmanager
def reading(shards: Path, splits: tuple[str, ...]):
    """Turn TensorFlow's read errors (`corrupted record at 6446`, a record that does not parse)
    into CorruptShard naming the file, for shards damaged while a stage reads them."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.DataLossError as err:
        check(shards, splits)  # names the file
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CorruptShard(_fix(f"{shards}: a record could not be read ({first})", shards)) from None
    except tf.errors.InvalidArgumentError:  # a record that does not parse, or a bug: only the former is the data's
        check(shards, splits)
        raise


def _fix(problem: str, shards: Path) -> str:
    return (f"{problem}. The shards are DVC's output: restore them with `dvc checkout {shards}`, "
            "or rebuild them with `dvc repro -f -s shard`")
