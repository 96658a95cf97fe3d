"""Stage `resize`: decode every raw image upright as RGB and fit it to `data.image_size`.

Writes `data/resized` (format in `data/resized.py`). Images are decoded in
parallel and each worker writes its image straight into its row on disk, so
memory stays flat however many there are and only hashes travel back.
Images that fail to decode are skipped and listed in the data report.

Two more kinds of image are left out, so that validation and test scores mean
what they say. Colourless photos (grayscale stored as RGB, mean channel spread
below `data.min_colour_spread`) in every split: they teach "no colour" and
score as perfect gray. Near duplicates across splits: each image's 64-bit
difference hash is compared with those of the images kept in the splits before
it (train, then val, then test), and a val or test photo within
`data.near_duplicate_bits` bits of one is dropped; the earlier copy stays.
Splits are processed in that order. An image left out keeps a row of zeros in
its split's array but has no line in the index, which with the counts lists
exactly the images kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorizer.core import atomic
from colorizer.core.config import DataParams
from colorizer.core.errors import UserError
from colorizer.core.parallel import process_pool
from colorizer.core.progress import Progress
from colorizer.data import raw as raw_format
from colorizer.data import resized as resized_format
from colorizer.data.images import (
    BadImage,
    colour_spread,
    decode_rgb,
    difference_hash,
    fit_square,
)
from colorizer.data.layout import SPLITS

# Decode at least this large for the hash. JPEG draft decoding picks a power-of-two reduction
# per file, so at tiny image sizes a 150 px photo and its 120 px copy decode at different
# scales: on 300 real photos such copies were up to 9 bits apart decoded for 32 px, 5 for 64.
HASH_MIN_DECODE = 64


def resize(data: DataParams, raw: Path, out: Path, report_path: Path) -> dict:
    """Resize every split of `raw` into `out`; writes the data report. Returns it."""
    manifest = raw_format.read_manifest(raw)
    classes = sorted({row["class"] for row in manifest})
    skipped, near_duplicates, counts = [], [], {}
    left_out = {"near_duplicates": {}, "colourless": {}}
    earlier = EarlierSplits()
    with atomic.output_dir(out) as staging, process_pool() as pool:
        for split in SPLITS:  # train, val, test: each compared with the ones before it
            rows = [r for r in manifest if r["split"] == split]
            result = _resize_split(pool, rows, raw, staging, split, data, earlier)
            _require_images_left(result, split, len(rows), data)
            counts[split] = len(result.kept)
            skipped += result.problems + result.colourless
            near_duplicates += result.near_duplicates
            left_out["near_duplicates"][split] = len(result.near_duplicates)
            left_out["colourless"][split] = len(result.colourless)
            earlier.add([r["file"] for r in result.kept], result.hashes)
        meta = {"image_size": data.image_size, "fit": data.fit, "classes": classes, "images": counts}
        atomic.write_json(staging / resized_format.META, meta)
        report = _data_report(raw, counts, skipped, near_duplicates, left_out)
        atomic.write_json(staging / resized_format.DATA_REPORT, report)
    atomic.write_json(report_path, report)
    return report


def _require_images_left(result, split: str, total: int, data: DataParams) -> None:
    """A split that filtering emptied stops here, saying why, not two stages later."""
    if not result.kept:
        raise UserError(
            f"the {split} split has no images left of its {total}: {len(result.problems)} unreadable, "
            f"{len(result.colourless)} colourless (data.min_colour_spread {data.min_colour_spread:g}), "
            f"{len(result.near_duplicates)} near duplicates of earlier splits (data.near_duplicate_bits "
            f"{data.near_duplicate_bits}); add images or relax those params")


class EarlierSplits:
    """The hashes of the images kept in the splits written so far, and their files."""

    def __init__(self):
        self.files: list[str] = []
        self.hashes = np.empty(0, np.uint64)

    def add(self, files: list[str], hashes: list[int]) -> None:
        self.files += files
        self.hashes = np.concatenate([self.hashes, np.array(hashes, np.uint64)])

    def nearest(self, value: int, max_bits: int) -> tuple[str, int] | None:
        """(file, Hamming distance) of the closest earlier image if within `max_bits` (0 = off)."""
        if max_bits == 0 or not len(self.hashes):
            return None
        # One XOR and popcount over all earlier hashes: 15 ms for the 2,400 val and test
        # photos of a 12,000-photo set (measured), so no index is needed.
        distances = np.bitwise_count(self.hashes ^ np.uint64(value))
        index = int(distances.argmin())  # ties: the first in split and manifest order
        return (self.files[index], int(distances[index])) if distances[index] <= max_bits else None


@dataclass
class SplitResult:
    kept: list[dict] = field(default_factory=list)  # rows of the index, in array order
    hashes: list[int] = field(default_factory=list)  # of the kept rows
    problems: list[dict] = field(default_factory=list)
    colourless: list[dict] = field(default_factory=list)
    near_duplicates: list[dict] = field(default_factory=list)


def _resize_split(pool, rows, raw: Path, staging: Path, split: str, data: DataParams, earlier: EarlierSplits):
    size = data.image_size
    result = SplitResult()
    progress = Progress(f"resize {split}", total=len(rows), unit="images")
    pixels = staging / f"{split}.npy"
    resized_format.create_rows(pixels, len(rows), (size, size, 3))
    jobs = [(raw / r["file"], size, data.fit, data.max_pixels, pixels, i) for i, r in enumerate(rows)]
    blank = np.zeros((size, size, 3), np.uint8)
    for i, (row, (dhash, spread, problem)) in enumerate(zip(rows, pool.map(_load_one, jobs, chunksize=8))):
        progress.advance()
        entry = {"file": row["file"], "stage": "resize"}
        if problem is not None:
            result.problems.append({**entry, "reason": problem})
            continue  # nothing was written to its row
        if spread < data.min_colour_spread:
            result.colourless.append({**entry, "reason": (
                f"colourless: mean channel spread {spread:.2f} < data.min_colour_spread "
                f"({data.min_colour_spread:g}); grayscale, nothing to learn colour from")})
        elif match := earlier.nearest(dhash, data.near_duplicate_bits):
            result.near_duplicates.append({**entry, "reason": f"near duplicate of {match[0]} ({match[1]} bits)"})
        else:
            result.kept.append({"file": row["file"], "class": row["class"], "row": i})
            result.hashes.append(dhash)
            continue
        resized_format.write_row(pixels, i, blank)  # left out: its pixels are not kept either
    progress.done()
    resized_format.write_index(staging / f"{split}.csv", result.kept)
    return result


def _load_one(job):
    """Worker: decode and fit one image and write it into its row of the split's array.
    Returns (difference hash, colour spread, None), or (None, None, reason) if it cannot be read."""
    path, size, fit, max_pixels, pixels, row = job
    try:
        decoded = decode_rgb(path.read_bytes(), max_pixels, target=max(size, HASH_MIN_DECODE))
        fitted = fit_square(decoded, size, fit)
    except BadImage as err:
        return None, None, str(err)
    except OSError as err:
        return None, None, f"unreadable: {err}"
    resized_format.write_row(pixels, row, fitted)  # outside the try: a failed write stops the stage
    # The hash of the whole decoded photo, not of the fitted square: at small image sizes
    # the square has too few pixels left for a stable 9x8 thumbnail (measured: copies
    # up to 15 bits apart when hashed after fitting to 32 px).
    return difference_hash(decoded), colour_spread(fitted), None


def _data_report(raw: Path, counts: dict, skipped: list[dict], near_duplicates: list[dict], left_out: dict) -> dict:
    """The download report plus what resize skipped: one place that lists every image left out."""
    report = raw_format.read_report(raw)
    del report["per_class"]  # in data/raw/report.json; as DVC metrics it would add a column per class and split
    report["skipped"] = sorted(report["skipped"] + skipped, key=lambda s: s["file"])
    report["duplicates"] = report["duplicates"] + near_duplicates  # exact (download), then near (resize)
    report["images"] = counts
    report.update(left_out)  # per split: near duplicates dropped, colourless photos skipped
    report["skipped_count"] = len(report["skipped"])
    report["duplicates_count"] = len(report["duplicates"])
    report["warnings_count"] = len(report["warnings"])
    # Names the data that later stages (and the MLflow dataset input) trained on; they read the
    # shards' copy of this report, not data/raw.
    report["manifest_sha256"] = hashlib.sha256((Path(raw) / raw_format.MANIFEST).read_bytes()).hexdigest()
    return report
