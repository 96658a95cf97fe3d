"""The format of `data/raw`, written by `download` and read by `resize`.

`data/raw/<split>/<class>/<file>` holds the images as they came; `manifest.csv`
lists every kept file (class, split, size, SHA-256, format, width, height),
sorted by path; `report.json` lists what was left out and why.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from colorizer.core.errors import read_stage_json

MANIFEST = "manifest.csv"
REPORT = "report.json"
MANIFEST_FIELDS = ("file", "class", "split", "size", "sha256", "format", "width", "height")


def read_manifest(raw: Path) -> list[dict]:
    with open(Path(raw) / MANIFEST, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_manifest(path: Path, rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: r["file"])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def read_report(raw: Path) -> dict:
    return read_stage_json(Path(raw) / REPORT, "download")
