"""Images in a folder (or a .zip of one) laid out as `<split>/<class>/*` or `<class>/*`.

The split folders may be named the Kaggle way (`Training Data`, `Validation Data`,
`Testing Data`) or `train`/`val`/`test`-style; wrapper folders with nothing else in
them (as archives and Kaggle downloads often have) are looked through.
"""

from __future__ import annotations

from pathlib import Path

from colorizer.data.layout import Candidate, split_of

# Folders that archivers and operating systems add; never image classes.
_IGNORED_DIRS = {"__macosx", ".ds_store", "@eadir", ".git", ".ipynb_checkpoints"}


class FolderSource:
    """Reads image files from a local folder tree."""

    def __init__(self, root: str | Path, description: str | None = None):
        self.root = Path(root)
        self.description = description or str(root)
        self.notes: list[dict] = []  # empty class folders: nothing is lost, but worth knowing
        if not self.root.is_dir():
            raise FileNotFoundError(f"data.source: {self.description} is not a folder")

    def candidates(self) -> list[Candidate]:
        root = dataset_root(self.root)
        folders = _subdirs(root)
        if not folders:
            raise ValueError(
                f"data.source: {self.description} has no class folders; expected <split>/<class>/<images> "
                "or <class>/<images>"
            )
        if any(split_of(f.name) for f in folders):
            return [c for f in folders for c in self._split_folder(f)]
        return [c for f in folders for c in self._class_folder(f, split=None)]

    def read(self, candidate: Candidate) -> bytes:
        return (self.root / candidate.origin).read_bytes()

    def _split_folder(self, folder: Path) -> list[Candidate]:
        split = split_of(folder.name)
        if split is None:
            raise ValueError(
                f"data.source: folder {folder.relative_to(self.root)!s} sits beside split folders but is not "
                "one (train/val/test, Training Data, ...); move or remove it"
            )
        return [c for f in _subdirs(folder) for c in self._class_folder(f, split)]

    def _class_folder(self, folder: Path, split: str | None) -> list[Candidate]:
        files = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
        if not files:
            self.notes.append({"file": str(folder.relative_to(self.root)), "reason": "empty class folder"})
        return [
            Candidate(
                split=split,
                label=folder.name,
                # Nested sub-folders of a class are flattened into the file name.
                name="__".join(p.relative_to(folder).parts),
                origin=str(p.relative_to(self.root)),
            )
            for p in files
        ]


def dataset_root(folder: Path) -> Path:
    """Look through wrapper folders: descend while a folder holds exactly one folder
    and no files, unless that folder is itself a class (it holds no sub-folders)."""
    while True:
        entries = [p for p in folder.iterdir() if p.name.lower() not in _IGNORED_DIRS]
        subdirs = [p for p in entries if p.is_dir()]
        if len(entries) == 1 and len(subdirs) == 1 and _subdirs(subdirs[0]):
            folder = subdirs[0]
        else:
            return folder


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name.lower() not in _IGNORED_DIRS and not p.name.startswith(".")
    )
