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
from colorizer.data.layout import SPLITS

META = "meta.json"
# Counts of the training split's quantised ab values, (256, 256) indexed [a + 128, b + 128]:
# the colour prior that class rebalancing (losses.py) needs, gathered while the pixels stream past.
AB_HISTOGRAM = "ab_histogram.npy"
# The data report travels with the data, so whoever trains on these shards finds it here.
DATA_REPORT = "data_report.json"


def file_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def read_meta(shards: Path) -> dict:
    """meta.json, checked for everything its readers use: damaged but still JSON (an edit by
    hand, a bad merge), it is CorruptShard naming it, not a KeyError deep inside train."""
    path = Path(shards) / META
    meta = read_stage_json(path, "shard")
    problem = _meta_problem(meta)
    if problem:
        raise CorruptShard(_fix(f"{path}: {problem}", shards))
    return meta


def _meta_problem(meta) -> str | None:
    """What is wrong with the structure of a parsed meta.json, or None."""
    if not isinstance(meta, dict):
        return f"holds {_kind(meta)}, not an object"
    if not _is_count(meta.get("image_size"), least=1):
        return f"image_size is {_shown(meta.get('image_size'))}, not a whole number of pixels >= 1"
    classes = meta.get("classes")
    if not (isinstance(classes, list) and classes and all(isinstance(name, str) for name in classes)):
        return f"classes is {_shown(classes)}, not a list of class names"
    if not isinstance(meta.get("ab_histogram"), str):
        return f"ab_histogram is {_shown(meta.get('ab_histogram'))}, not a file name"
    if not isinstance(meta.get("splits"), dict):
        return f"splits is {_shown(meta.get('splits'))}, not an object"
    for split in SPLITS:
        entry = meta["splits"].get(split)
        if not isinstance(entry, dict):
            return f"the {split} split is {_shown(entry)}, not an object"
        files = entry.get("files")
        if not (isinstance(files, list) and files and all(isinstance(name, str) and name for name in files)):
            return f"the {split} split's files are {_shown(files)}, not a list of file names"
        if not _is_count(entry.get("examples"), least=0):
            return f"the {split} split's examples is {_shown(entry.get('examples'))}, not a count"
    return None


def _is_count(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), _shown(value))


def _shown(value) -> str:
    """`value` as JSON writes it, cut short: the message stays one readable line."""
    text = "missing" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def split_files(shards: Path, split: str) -> tuple[list[str], int, int]:
    """(paths of the split's shard files, example count, image size)."""
    meta = read_meta(shards)
    files = [str(Path(shards) / name) for name in meta["splits"][split]["files"]]
    return files, meta["splits"][split]["examples"], meta["image_size"]


def read_ab_histogram(shards: Path) -> np.ndarray:
    """The (256, 256) colour counts; a missing, truncated or reshaped file is CorruptShard naming it."""
    path = Path(shards) / read_meta(shards)["ab_histogram"]
    try:
        histogram = np.load(path)
    except FileNotFoundError:
        raise CorruptShard(_fix(f"{path}: missing", shards)) from None
    except (OSError, ValueError, EOFError) as err:  # numpy's errors for a truncated or garbled .npy
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise CorruptShard(_fix(f"{path}: not a readable .npy array ({first})", shards)) from None
    if histogram.shape != (256, 256) or histogram.dtype.kind not in "iuf" or not np.all(histogram >= 0):
        raise CorruptShard(_fix(f"{path}: not (256, 256) colour counts (it holds {histogram.dtype} "
                                f"{histogram.shape})", shards))
    return histogram


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
        _check_image_size(shards, files[0], meta["image_size"])


def _check_image_size(shards: Path, file: str, image_size: int) -> None:
    """The images are the size meta.json says (the readers fix their shapes to it): the first
    record of a file stands for all of them, since the shard stage writes one size."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset([file]).take(1):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        height, width = feature["height"].int64_list.value[0], feature["width"].int64_list.value[0]
        if (height, width) != (image_size, image_size):
            raise CorruptShard(_fix(f"{Path(shards) / META}: image_size is {image_size}, but the images in "
                                    f"{file} are {height}x{width}", shards))


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
