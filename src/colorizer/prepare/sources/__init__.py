"""Where the images come from, chosen by `data.source`.

Every source yields `Candidate`s (split, class, file name) and can `read` each
one's bytes; `download.py` does the rest the same way for all of them. Remote and
archived sources are first made local (kagglehub's cache, a safely extracted
temporary folder, a TFDS export), then read as a folder.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
from pathlib import Path

from colorizer.core.config import DataParams
from colorizer.data.layout import NO_SPLIT_SHARES, SPLITS, Candidate, split_counts
from colorizer.prepare.sources import archive, kaggle, synthetic, tfds
from colorizer.prepare.sources.errors import SourceNotFound
from colorizer.prepare.sources.folder import FolderSource

GIB = 1 << 30
MIB = 1 << 20


class SyntheticSource:
    """The procedurally generated landscapes: `synthetic_per_class` images per class, split 64:16:20."""

    description = "synthetic"
    notes: list[dict] = []
    refused: list[dict] = []

    def __init__(self, seed: int, per_class: int, size: int):
        self.seed, self.per_class, self.size = seed, per_class, size

    def candidates(self) -> list[Candidate]:
        counts = split_counts(self.per_class, NO_SPLIT_SHARES)
        result, index = [], 0
        for label in synthetic.CLASSES:
            index = 0
            for split in SPLITS:
                for _ in range(counts[split]):
                    name = f"{label}_{index:05d}.jpg"
                    result.append(Candidate(split, label, name, origin=f"synthetic/{label}/{index}"))
                    index += 1
        return result

    def read(self, candidate: Candidate) -> bytes:
        index = int(candidate.origin.rsplit("/", 1)[1])
        return synthetic.generate_jpeg(self.seed, candidate.label, index, self.size)


@contextlib.contextmanager
def open_source(data: DataParams, seed: int, root: Path, scratch: Path):
    """Yield `(source, refused)` for `data.source`.

    `root` resolves relative source paths; `scratch` holds temporary
    extractions and exports, removed on exit. `refused` lists archive entries or
    splits left out before any image was read, for the data report (a folder
    source adds the entries it refuses to `source.refused` as it lists them).
    """
    spec = data.source.strip()
    max_bytes = data.max_file_mib * MIB
    if spec == "synthetic":
        yield SyntheticSource(seed, data.synthetic_per_class, data.synthetic_size), []
    elif spec == "kaggle":
        yield FolderSource(kaggle.download(), max_bytes, description=f"kaggle:{kaggle.DATASET}"), []
    elif spec.startswith(tfds.PREFIX):
        with _scratch_dir(scratch) as work:
            refused = tfds.export(spec, work / "export", data.max_per_class)
            yield FolderSource(work / "export", max_bytes, description=spec), refused
    else:
        path = _local_path(spec, root)
        if path.is_dir():
            yield FolderSource(path, max_bytes), []
        else:
            with _scratch_dir(scratch) as work:
                refused = archive.extract_zip(path, work / "unzipped", data.max_archive_gib * GIB)
                yield FolderSource(work / "unzipped", max_bytes, description=str(path)), refused


def _local_path(spec: str, root: Path) -> Path:
    path = Path(spec).expanduser()
    path = path if path.is_absolute() else root / path
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        return path
    what = "is not a .zip archive" if path.is_file() else "does not exist"
    raise SourceNotFound(
        f"data.source: {spec!r} ({path}) {what}. Use synthetic, kaggle, tfds:<name>[/<config>], "
        "or a path to a folder or .zip of images laid out as <split>/<class>/* or <class>/*."
    )


@contextlib.contextmanager
def _scratch_dir(parent: Path):
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="source-", dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
