"""Outputs appear whole or not at all.

Each stage writes into a temporary sibling and renames it into place at the end,
so a stage killed at any moment (SIGINT, SIGKILL, power loss) never leaves a
half-written file or folder that DVC or a later stage could take as complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

WRITING = "colorizer_writing"  # the attribute naming, on an error, the output it interrupted


@dataclass(frozen=True)
class Interrupted:
    """The output an error interrupted: its path, what had been written of it, the space left then."""

    path: Path
    written: int
    free: int


@contextlib.contextmanager
def writing(final: Path, partial: Path | None = None):
    """Tag an error raised in the block with the output being written (the innermost wins), so
    that an error that does not name its file (a full disk in a worker process) can be told."""
    try:
        yield
    except BaseException as err:
        if not hasattr(err, WRITING):
            try:
                setattr(err, WRITING, Interrupted(Path(final), _size(partial), _free(Path(final))))
            except AttributeError:  # an exception type without a __dict__
                pass
        raise


def _size(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _free(path: Path) -> int:
    folder = path.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


@contextlib.contextmanager
def output_dir(final: str | Path):
    """Yield an empty temporary folder that replaces `final` when the block succeeds."""
    partial = partial_path(final)
    shutil.rmtree(partial, ignore_errors=True)  # left over from a killed run
    partial.mkdir(parents=True)
    try:
        with writing(final, partial):  # before the clean-up, to see what had been written
            yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_path(partial, final)


@contextlib.contextmanager
def output_file(final: str | Path, mode: str = "w"):
    """Open a temporary sibling of `final` for writing; it replaces `final` on success."""
    final = Path(final)
    partial = partial_path(final)
    try:
        with writing(final, partial), open(partial, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, final)


def partial_path(final: str | Path) -> Path:
    """The temporary sibling `final` is written as: hidden, same folder (so the
    rename is atomic), same suffix (keras `model.save` insists on `.keras`)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".partial.{final.name}")


def write_json(path: str | Path, data) -> None:
    with output_file(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def replace_path(source: Path, final: Path) -> None:
    """Move `source` onto `final`, replacing a file or a whole folder."""
    final = Path(final)
    if final.is_dir() and not final.is_symlink():
        old = final.with_name(f".old.{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(source, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        final.unlink(missing_ok=True)
        os.replace(source, final)
