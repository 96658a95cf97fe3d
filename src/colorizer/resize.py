"""Stage `resize`: decode every raw image upright as RGB and fit it to `data.image_size`.

Output per split, in manifest order: `<split>.npy`, an (N, S, S, 3) uint8 array
(pixel value = 255 x the [0, 1] intensity: the normalisation is exact and the
array 4x smaller than float32; `load_unit_rgb` gives the [0, 1] floats), and
`<split>.csv` naming each row's file and class. Images are decoded in parallel
and streamed into a memory-mapped file, so memory stays flat however many there
are. Images that fail to decode are skipped and listed in the data report.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from colorizer import atomic
from colorizer.config import DataParams
from colorizer.download import REPORT, read_manifest
from colorizer.images import BadImage, load_square
from colorizer.layout import SPLITS
from colorizer.parallel import process_pool
from colorizer.progress import Progress

META = "meta.json"
_HEADER_BYTES = 128  # .npy v1 header, padded; fixed so it can be written after the rows


def resize(data: DataParams, raw: Path, out: Path, report_path: Path) -> dict:
    """Resize every split of `raw` into `out`; writes the data report. Returns it."""
    manifest = read_manifest(raw)
    classes = sorted({row["class"] for row in manifest})
    skipped, counts = [], {}
    with atomic.output_dir(out) as staging, process_pool() as pool:
        for split in SPLITS:
            rows = [r for r in manifest if r["split"] == split]
            kept, problems = _resize_split(pool, rows, raw, staging, split, data)
            counts[split] = len(kept)
            skipped += problems
        meta = {"image_size": data.image_size, "fit": data.fit, "classes": classes, "images": counts}
        atomic.write_json(staging / META, meta)
    report = _data_report(raw, counts, skipped)
    atomic.write_json(report_path, report)
    return report


def load_unit_rgb(pixels: np.ndarray) -> np.ndarray:
    """The stored uint8 rows as the normalised [0, 1] float32 image the design asks for."""
    return pixels.astype(np.float32) / 255.0


def read_split(resized: Path, split: str) -> tuple[np.ndarray, list[dict]]:
    """(memory-mapped pixels, rows with file and class) of one split."""
    with open(resized / f"{split}.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pixels = np.load(resized / f"{split}.npy", mmap_mode="r")
    if len(pixels) != len(rows):
        raise ValueError(f"{resized}: {split}.npy has {len(pixels)} rows but {split}.csv lists {len(rows)}")
    return pixels, rows


def read_meta(resized: Path) -> dict:
    return json.loads((resized / META).read_text())


def _resize_split(pool, rows, raw: Path, staging: Path, split: str, data: DataParams):
    size = data.image_size
    kept, problems = [], []
    progress = Progress(f"resize {split}", total=len(rows), unit="images")
    jobs = [(raw / r["file"], size, data.fit, data.max_pixels) for r in rows]
    with RowWriter(staging / f"{split}.npy", (size, size, 3)) as pixels:
        for row, (image, problem) in zip(rows, pool.map(_load_one, jobs, chunksize=8)):
            if image is None:
                problems.append({"file": row["file"], "stage": "resize", "reason": problem})
            else:
                pixels.append(image)  # compact: skipped images leave no gap
                kept.append({"file": row["file"], "class": row["class"]})
            progress.advance()
    progress.done()
    with open(staging / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["file", "class"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return kept, problems


def _load_one(job):
    path, size, fit, max_pixels = job
    try:
        return load_square(path.read_bytes(), size, fit, max_pixels), None
    except BadImage as err:
        return None, str(err)
    except OSError as err:
        return None, f"unreadable: {err}"


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


def _data_report(raw: Path, counts: dict, skipped: list[dict]) -> dict:
    """The download report plus what resize skipped: one place that lists every image left out."""
    report = json.loads((raw / REPORT).read_text())
    del report["per_class"]  # in data/raw/report.json; as DVC metrics it would add a column per class and split
    report["skipped"] = sorted(report["skipped"] + skipped, key=lambda s: s["file"])
    report["images"] = counts
    report["skipped_count"] = len(report["skipped"])
    report["duplicates_count"] = len(report["duplicates"])
    report["warnings_count"] = len(report["warnings"])
    return report
