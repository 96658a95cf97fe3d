"""The format of `data/resized`, written by `resize` and read by `shard`.

Per split: `<split>.npy`, an (N, S, S, 3) uint8 array with one row per image of
the split in the download manifest (pixel value = 255 x the [0, 1] intensity:
the design's normalisation, stored exactly and 4x smaller than float32), and
`<split>.csv` naming the file, class and row of each image kept, in manifest
order. Rows of images left out (unreadable, colourless, near duplicates) are
zeros and not in the index: each resize worker writes its image straight into
its row, so no pixels travel between processes (bench/README.md), and the
decision to leave an image out, made after, only clears its row.
`meta.json` holds the image size, fit, classes and counts of kept images;
`data_report.json` every image left out so far.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from colorizer.core.errors import damaged_file, read_stage_json

META = "meta.json"
DATA_REPORT = "data_report.json"
INDEX_FIELDS = ("file", "class", "row")
_HEADER_BYTES = 128  # .npy v1 header, padded; fixed, so every row's offset is known before any is written


def read_meta(resized: Path) -> dict:
    return read_stage_json(Path(resized) / META, "resize")


def read_index(resized: Path, split: str) -> list[dict]:
    """The images kept in one split (file, class, row: int), in manifest order."""
    path = Path(resized) / f"{split}.csv"
    with _damaged(path), open(path, newline="", encoding="utf-8") as handle:
        return [{**row, "row": int(row["row"])} for row in csv.DictReader(handle)]


def _damaged(path: Path):
    """A file of data/resized that cannot be read fails as one line with how to get it back, not
    a reshape error from inside a shard worker."""
    return damaged_file(path, "restore it with `dvc checkout resize`, or re-run `dvc repro -f -s resize`",
                        also=(csv.Error,))


def write_index(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, INDEX_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def create_rows(path: Path, count: int, row_shape: tuple) -> None:
    """An all-zero uint8 .npy of `count` rows (sparse on disk until written), for `write_row`."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (count, *row_shape)})
        if handle.tell() != _HEADER_BYTES:
            raise AssertionError(f"unexpected .npy header length {handle.tell()}")
        handle.truncate(_HEADER_BYTES + count * int(np.prod(row_shape)))


def write_row(path: Path, index: int, row: np.ndarray) -> None:
    """Write one row of a file made by `create_rows` in place (from any process: positioned writes)."""
    data = np.ascontiguousarray(row, np.uint8)
    left, offset = memoryview(data).cast("B"), _HEADER_BYTES + index * data.nbytes
    fd = os.open(path, os.O_WRONLY)
    try:
        while left:  # pwrite may write less than asked (a filling disk, network filesystems)
            written = os.pwrite(fd, left, offset)
            if written == 0:
                raise OSError(f"{path}: could not write row {index}")
            left, offset = left[written:], offset + written
    finally:
        os.close(fd)


def read_rows(path: Path, indices) -> np.ndarray:
    """Rows `indices` of a uint8 .npy, read with positioned reads (no memory map to grow)."""
    with _damaged(path), open(path, "rb") as handle:
        if np.lib.format.read_magic(handle) != (1, 0):
            raise ValueError(f"{path}: not written by the resize stage (expected a version 1.0 .npy)")
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        offset = handle.tell()
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        out = np.empty((len(indices), *shape[1:]), dtype)
        for k, index in enumerate(indices):
            out[k] = np.frombuffer(os.pread(handle.fileno(), row_bytes, offset + int(index) * row_bytes), dtype).reshape(
                shape[1:]
            )
    return out
