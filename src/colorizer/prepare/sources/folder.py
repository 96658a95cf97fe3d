"""Images in a folder (or a .zip of one) laid out as `<split>/<class>/*` or `<class>/*`.

The split folders may be named the Kaggle way (`Training Data`, `Validation Data`,
`Testing Data`) or `train`/`val`/`test`-style; wrapper folders with nothing else in
them (as archives and Kaggle downloads often have) are looked through.

Only regular files inside the source folder are read, each up to a byte cap: a
symbolic link is followed only when it resolves to a regular file inside the
source folder, and FIFOs, devices, sockets and links elsewhere are refused and
listed with their reason in `refused` (the data report), the same policy as for
.zip sources (`archive.py`). Two split folders that mean the same split (`train/`
and `Training Data/`) are both read; their files keep the folder's name as a
prefix (`Training Data__img_001.jpg`) so equal names stay distinct.
"""

from __future__ import annotations

import os
from pathlib import Path

from colorizer.core.files import kind_of, read_regular_file
from colorizer.data.layout import Candidate, split_of

# Folders that archivers and operating systems add; never image classes.
_IGNORED_DIRS = {"__macosx", ".ds_store", "@eadir", ".git", ".ipynb_checkpoints"}


class FolderSource:
    """Reads image files from a local folder tree."""

    def __init__(self, root: str | Path, max_bytes: int, description: str | None = None):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.description = description or str(root)
        self.notes: list[dict] = []  # empty class folders: nothing is lost, but worth knowing
        self.refused: list[dict] = []  # entries never read (links, FIFOs, devices), with the reason
        if not self.root.is_dir():
            raise FileNotFoundError(f"data.source: {self.description} is not a folder")
        self._resolved_root = self.root.resolve()

    def candidates(self) -> list[Candidate]:
        root = dataset_root(self.root)
        self._refuse_linked_folders(root)
        folders = _subdirs(root)
        if not folders:
            raise ValueError(
                f"data.source: {self.description} has no class folders; expected <split>/<class>/<images> "
                "or <class>/<images>"
            )
        if any(split_of(f.name) for f in folders):
            shared = _splits_named_twice(folders)
            return [c for f in folders for c in self._split_folder(f, prefix=split_of(f.name) in shared)]
        return [c for f in folders for c in self._class_folder(f, split=None)]

    def read(self, candidate: Candidate) -> bytes:
        # Checked again here, not only when listed: the tree may have changed since.
        path = self.root / candidate.origin
        reason = self._refusal(path)
        if reason:
            raise OSError(reason)
        return read_regular_file(path.resolve(), self.max_bytes)

    def _split_folder(self, folder: Path, prefix: bool) -> list[Candidate]:
        split = split_of(folder.name)
        if split is None:
            raise ValueError(
                f"data.source: folder {folder.relative_to(self.root)!s} sits beside split folders but is not "
                "one (train/val/test, Training Data, ...); move or remove it"
            )
        self._refuse_linked_folders(folder)
        return [c for f in _subdirs(folder) for c in self._class_folder(f, split, folder.name if prefix else None)]

    def _class_folder(self, folder: Path, split: str | None, prefix: str | None = None) -> list[Candidate]:
        files = []
        for entry in _entries(folder):
            reason = self._refusal(entry)
            if reason:
                self.refused.append({"file": str(entry.relative_to(self.root)), "reason": reason})
            else:
                files.append(entry)
        if not files:
            self.notes.append({"file": str(folder.relative_to(self.root)), "reason": "empty class folder"})
        return [
            Candidate(
                split=split,
                label=folder.name,
                # Nested sub-folders of a class are flattened into the file name.
                name="__".join(([prefix] if prefix else []) + list(p.relative_to(folder).parts)),
                origin=str(p.relative_to(self.root)),
            )
            for p in files
        ]

    def _refusal(self, path: Path) -> str | None:
        """Why `path` may not be read (None: a regular file inside the source, or a link to one)."""
        try:
            mode = path.lstat().st_mode
            if not os.path.islink(path):
                return None if kind_of(mode) == "regular file" else f"not a regular file (a {kind_of(mode)}); refused"
            target = path.resolve(strict=True)
            mode = target.stat().st_mode
        except FileNotFoundError:
            return "broken symbolic link; refused"
        except (OSError, RuntimeError) as err:  # RuntimeError: a symbolic link loop
            return f"unreadable: {err}"
        if not target.is_relative_to(self._resolved_root):
            return f"symbolic link to {target}, outside the source folder; refused"
        if kind_of(mode) != "regular file":
            return f"symbolic link to a {kind_of(mode)}; refused"
        return None

    def _refuse_linked_folders(self, folder: Path) -> None:
        for p in sorted(folder.iterdir()):
            if p.is_symlink() and p.is_dir():
                self.refused.append({"file": str(p.relative_to(self.root)),
                                     "reason": "symbolic link to a folder (not followed); refused"})


def _entries(folder: Path) -> list[Path]:
    """Every non-folder entry under `folder`, links included, never descending into linked folders."""
    found = []
    for parent, dirs, names in os.walk(folder, followlinks=False):
        # os.walk lists links to folders among `dirs` without entering them: they are entries too.
        found += [Path(parent) / n for n in names] + [Path(parent) / d for d in dirs if os.path.islink(Path(parent) / d)]
    return sorted(found)


def _splits_named_twice(folders: list[Path]) -> set[str]:
    splits = [split_of(f.name) for f in folders]
    return {s for s in splits if s and splits.count(s) > 1}


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
