"""Stage `download`: materialise a source into `data/raw/<split>/<class>/<file>`.

Every image is checked from its header (format, size, decompression-bomb limit)
as it is copied; files that are not usable images are skipped and listed with
their reason in `report.json`, never dropped silently. Exact duplicates (same
SHA-256) are kept once, in the earliest split (train, then val, then test), so
a test photo can never also be a training photo. `manifest.csv` lists every
kept file with its class, split, size and SHA-256, sorted, so the same source
and params always give byte-identical manifests.

Every kept file is one manifest row and one file under its own path: two
candidates that would land on the same `<split>/<class>/<file>` are refused
with both origins named, never written over each other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from colorizer.core import atomic
from colorizer.core.config import Params
from colorizer.core.parallel import process_pool
from colorizer.core.progress import Progress
from colorizer.data import raw as raw_format
from colorizer.data.images import BadImage, probe
from colorizer.data.layout import SPLITS, assign_splits, cap_per_class
from colorizer.prepare.sources import open_source


def download(params: Params, out: Path, root: Path) -> dict:
    """Materialise `params.data.source` into `out`. Returns the report."""
    data = params.data
    with atomic.output_dir(out) as staging:
        with open_source(data, data.seed, root=root, scratch=out.parent) as (source, refused):
            candidates = source.candidates()
            if not candidates:
                raise ValueError(f"data.source: {source.description} holds no files")
            candidates = assign_splits(candidates, data.seed)
            _check_distinct_targets(candidates, source.description)
            candidates = cap_per_class(candidates, data.max_per_class, data.seed)
            rows, skipped = _copy_all(source, candidates, staging, data.max_pixels)
            refused = refused + source.refused
        rows, duplicates = _drop_duplicates(rows, staging)
        _check_usable(rows, source.description)
        refused = [{**entry, "stage": "download"} for entry in refused]
        report = _report(source.description, rows, refused + skipped, duplicates, source.notes)
        raw_format.write_manifest(staging / raw_format.MANIFEST, rows)
        atomic.write_json(staging / raw_format.REPORT, report)
    return report


def _target(candidate) -> str:
    return f"{candidate.split}/{candidate.label}/{candidate.name}"


def _check_distinct_targets(candidates, description: str) -> None:
    """Two source files on one raw path would overwrite each other; refuse, naming both."""
    seen = {}
    for candidate in candidates:
        other = seen.setdefault(_target(candidate), candidate)
        if other is not candidate:
            raise ValueError(
                f"data.source: {description}: {other.origin!r} and {candidate.origin!r} would both be stored as "
                f"{_target(candidate)}; rename one of them"
            )


def _copy_all(source, candidates, staging: Path, max_pixels: int):
    jobs = [(source, c, staging, max_pixels) for c in candidates]
    rows, skipped = [], []
    progress = Progress("download", total=len(jobs), unit="images")
    with process_pool() as pool:
        for row, problem in pool.map(_copy_one, jobs, chunksize=16):
            (rows.append(row) if row else skipped.append(problem))
            progress.advance()
    progress.done()
    return rows, skipped


def _copy_one(job):
    """Read one candidate, check its header, write it into the staging folder."""
    source, candidate, staging, max_pixels = job
    relative = _target(candidate)
    try:
        data = source.read(candidate)
        info = probe(data, max_pixels)
    except BadImage as err:
        return None, {"file": candidate.origin, "stage": "download", "reason": str(err)}
    except OSError as err:
        return None, {"file": candidate.origin, "stage": "download", "reason": f"unreadable: {err.strerror or err}"}
    target = staging / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    row = {
        "file": relative,
        "class": candidate.label,
        "split": candidate.split,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": info.format,
        "width": info.width,
        "height": info.height,
    }
    return row, None


def _drop_duplicates(rows: list[dict], staging: Path):
    """Keep the first copy of each exact duplicate (train before val before test)."""
    rows = sorted(rows, key=lambda r: (SPLITS.index(r["split"]), r["file"]))
    first_seen, kept, duplicates = {}, [], []
    for row in rows:
        original = first_seen.setdefault(row["sha256"], row["file"])
        if original == row["file"]:
            kept.append(row)
        else:
            (staging / row["file"]).unlink()
            duplicates.append({"file": row["file"], "stage": "download", "reason": f"exact duplicate of {original}"})
    return kept, duplicates


def _check_usable(rows: list[dict], description: str) -> None:
    present = {r["split"] for r in rows}
    missing = [s for s in SPLITS if s not in present]
    if not rows:
        raise ValueError(f"data.source: {description} yielded no usable images (see the skipped files above)")
    if missing:
        raise ValueError(
            f"data.source: {description} yielded no images for split(s) {', '.join(missing)}; "
            "add images or raise data.max_per_class"
        )


def _report(description, rows: list[dict], skipped: list[dict], duplicates: list[dict], notes: list[dict]) -> dict:
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    classes = sorted({r["class"] for r in rows})
    per_class = {c: {s: sum(r["split"] == s and r["class"] == c for r in rows) for s in SPLITS} for c in classes}
    missing = [
        {"file": f"{split}/{c}", "reason": f"class {c!r} has no images in the {split} split"}
        for c in classes for split in SPLITS if per_class[c][split] == 0
    ]
    return {
        "source": description,
        "images": counts,
        "classes": classes,
        "per_class": per_class,
        "skipped": sorted(skipped, key=lambda s: s["file"]),
        "duplicates": duplicates,
        "warnings": notes + missing,
    }

