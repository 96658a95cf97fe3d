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
from pathlib import Path


@contextlib.contextmanager
def output_dir(final: str | Path):
    """Yield an empty temporary folder that replaces `final` when the block succeeds."""
    partial = partial_path(final)
    shutil.rmtree(partial, ignore_errors=True)  # left over from a killed run
    partial.mkdir(parents=True)
    try:
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
        with open(partial, mode) as handle:
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
