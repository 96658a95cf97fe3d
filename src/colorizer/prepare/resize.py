"""Stage `resize`: decode every raw image upright as RGB and fit it to `data.image_size`.

Writes `data/resized` (format in `data/resized.py`). Images are decoded in
parallel and streamed to disk, so memory stays flat however many there are.
Images that fail to decode are skipped and listed in the data report.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from colorizer.core import atomic
from colorizer.core.config import DataParams
from colorizer.core.parallel import process_pool
from colorizer.core.progress import Progress
from colorizer.data import raw as raw_format
from colorizer.data import resized as resized_format
from colorizer.data.images import BadImage, load_square
from colorizer.data.layout import SPLITS


def resize(data: DataParams, raw: Path, out: Path, report_path: Path) -> dict:
    """Resize every split of `raw` into `out`; writes the data report. Returns it."""
    manifest = raw_format.read_manifest(raw)
    classes = sorted({row["class"] for row in manifest})
    skipped, counts = [], {}
    with atomic.output_dir(out) as staging, process_pool() as pool:
        for split in SPLITS:
            rows = [r for r in manifest if r["split"] == split]
            kept, problems = _resize_split(pool, rows, raw, staging, split, data)
            counts[split] = len(kept)
            skipped += problems
        meta = {"image_size": data.image_size, "fit": data.fit, "classes": classes, "images": counts}
        atomic.write_json(staging / resized_format.META, meta)
        report = _data_report(raw, counts, skipped)
        atomic.write_json(staging / resized_format.DATA_REPORT, report)
    atomic.write_json(report_path, report)
    return report


def _resize_split(pool, rows, raw: Path, staging: Path, split: str, data: DataParams):
    size = data.image_size
    kept, problems = [], []
    progress = Progress(f"resize {split}", total=len(rows), unit="images")
    jobs = [(raw / r["file"], size, data.fit, data.max_pixels) for r in rows]
    with resized_format.RowWriter(staging / f"{split}.npy", (size, size, 3)) as pixels:
        for row, (image, problem) in zip(rows, pool.map(_load_one, jobs, chunksize=8)):
            if image is None:
                problems.append({"file": row["file"], "stage": "resize", "reason": problem})
            else:
                pixels.append(image)  # compact: skipped images leave no gap
                kept.append({"file": row["file"], "class": row["class"]})
            progress.advance()
    progress.done()
    resized_format.write_index(staging / f"{split}.csv", kept)
    return kept, problems


def _load_one(job):
    path, size, fit, max_pixels = job
    try:
        return load_square(path.read_bytes(), size, fit, max_pixels), None
    except BadImage as err:
        return None, str(err)
    except OSError as err:
        return None, f"unreadable: {err}"


def _data_report(raw: Path, counts: dict, skipped: list[dict]) -> dict:
    """The download report plus what resize skipped: one place that lists every image left out."""
    report = raw_format.read_report(raw)
    del report["per_class"]  # in data/raw/report.json; as DVC metrics it would add a column per class and split
    report["skipped"] = sorted(report["skipped"] + skipped, key=lambda s: s["file"])
    report["images"] = counts
    report["skipped_count"] = len(report["skipped"])
    report["duplicates_count"] = len(report["duplicates"])
    report["warnings_count"] = len(report["warnings"])
    # Names the data that later stages (and the MLflow dataset input) trained on; they read the
    # shards' copy of this report, not data/raw.
    report["manifest_sha256"] = hashlib.sha256((Path(raw) / raw_format.MANIFEST).read_bytes()).hexdigest()
    return report
