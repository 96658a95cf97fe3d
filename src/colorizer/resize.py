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
_HEADER_BYTES = 128  # .npy v1 header, padded; fixed so the shape can be rewritten in place


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
    array_path = staging / f"{split}.npy"
    pixels = _open_rows(array_path, len(rows), (size, size, 3))
    kept, problems = [], []
    progress = Progress(f"resize {split}", total=len(rows), unit="images")
    jobs = [(raw / r["file"], size, data.fit, data.max_pixels) for r in rows]
    for row, (image, problem) in zip(rows, pool.map(_load_one, jobs, chunksize=8)):
        if image is None:
            problems.append({"file": row["file"], "stage": "resize", "reason": problem})
        else:
            pixels[len(kept)] = image  # compact: skipped images leave no gap
            kept.append({"file": row["file"], "class": row["class"]})
        progress.advance()
    progress.done()
    pixels.flush()
    del pixels
    _truncate_rows(array_path, len(kept), (size, size, 3))
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


def _open_rows(path: Path, capacity: int, row_shape: tuple) -> np.memmap:
    """A uint8 .npy of `capacity` rows, memory-mapped for writing, with a fixed-size header."""
    _write_header(path, (capacity, *row_shape), create=True)
    return np.memmap(path, np.uint8, "r+", offset=_HEADER_BYTES, shape=(capacity, *row_shape))


def _truncate_rows(path: Path, count: int, row_shape: tuple) -> None:
    """Shrink the .npy to its first `count` rows (after skipped images)."""
    _write_header(path, (count, *row_shape), create=False)
    with open(path, "r+b") as handle:
        handle.truncate(_HEADER_BYTES + count * int(np.prod(row_shape)))


def _write_header(path: Path, shape: tuple, create: bool) -> None:
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    with open(path, "w+b" if create else "r+b") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        if handle.tell() != _HEADER_BYTES:
            raise AssertionError(f"unexpected .npy header length {handle.tell()} for shape {shape}")
        if create:
            handle.truncate(_HEADER_BYTES + int(np.prod(shape)))


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
