"""The format of `data/resized`, written by `resize` and read by `shard`.

Per split, in manifest order: `<split>.npy`, an (N, S, S, 3) uint8 array (pixel
value = 255 x the [0, 1] intensity: the design's normalisation, stored exactly
and 4x smaller than float32), and `<split>.csv` naming each row's file and
class. `meta.json` holds the image size, fit, classes and counts;
`data_report.json` every image left out so far.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

META = "meta.json"
DATA_REPORT = "data_report.json"
INDEX_FIELDS = ("file", "class")
_HEADER_BYTES = 128  # .npy v1 header, padded; fixed so it can be written after the rows


def read_meta(resized: Path) -> dict:
    return json.loads((Path(resized) / META).read_text())


def read_index(resized: Path, split: str) -> list[dict]:
    """The rows (file, class) of one split, in array order."""
    with open(Path(resized) / f"{split}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_index(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, INDEX_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


class RowWriter:
    """Appends uint8 rows to a .npy file; the header, which holds the row count,
    is written last. Plain sequential writes: nothing stays mapped in memory."""

    def __init__(self, path: Path, row_shape: tuple):
        self.path, self.row_shape, self.count = path, row_shape, 0
        self.handle = open(path, "wb")
        self.handle.write(b"\0" * _HEADER_BYTES)

    def append(self, row: np.ndarray) -> None:
        if row.shape != self.row_shape or row.dtype != np.uint8:
            raise ValueError(f"{self.path}: row of shape {row.shape} {row.dtype}, expected {self.row_shape} uint8")
        self.handle.write(row.tobytes())
        self.count += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.handle.seek(0)
        header = {"descr": "|u1", "fortran_order": False, "shape": (self.count, *self.row_shape)}
        np.lib.format.write_array_header_1_0(self.handle, header)
        if self.handle.tell() != _HEADER_BYTES:
            raise AssertionError(f"unexpected .npy header length {self.handle.tell()}")
        self.handle.close()


def read_rows(path: Path, indices) -> np.ndarray:
    """Rows `indices` of a uint8 .npy, read with positioned reads (no memory map to grow)."""
    with open(path, "rb") as handle:
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
