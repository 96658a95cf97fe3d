"""The format of the shard folder, written by `shard` and read by `train` and `evaluate`.

`<split>-<k>-of-<n>.tfrecord` files (the record schema is in `tfrecords.py`);
`meta.json` with the image size, class names, example counts and file names per
split and the schema version; `ab_histogram.npy`, the training split's colour
counts; `data_report.json`, every image left out on the way here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

META = "meta.json"
# Counts of the training split's quantised ab values, (256, 256) indexed [a + 128, b + 128]:
# the colour prior that class rebalancing (losses.py) needs, gathered while the pixels stream past.
AB_HISTOGRAM = "ab_histogram.npy"
# The data report travels with the data, so whoever trains on these shards finds it here.
DATA_REPORT = "data_report.json"


def file_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def read_meta(shards: Path) -> dict:
    path = Path(shards) / META
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro shard` first")
    return json.loads(path.read_text())


def split_files(shards: Path, split: str) -> tuple[list[str], int, int]:
    """(paths of the split's shard files, example count, image size)."""
    meta = read_meta(shards)
    files = [str(Path(shards) / name) for name in meta["splits"][split]["files"]]
    return files, meta["splits"][split]["examples"], meta["image_size"]


def read_ab_histogram(shards: Path) -> np.ndarray:
    return np.load(Path(shards) / read_meta(shards)["ab_histogram"])


def data_report_path(shards: Path) -> Path:
    return Path(shards) / DATA_REPORT
