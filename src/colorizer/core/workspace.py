"""Where the user's repository is, even when DVC runs a stage in a copy of it.

`dvc exp run --temp` and queued experiments execute in temporary copies under
`<repo>/.dvc/tmp/exps/`. Anything that must outlive the copy (the MLflow store,
a data source given as a relative path) resolves against the real repository:
DVC says where it is in `DVC_ROOT`; outside DVC, the path itself tells.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_DVC_TEMP_PARTS = (".dvc", "tmp", "exps")


def repo_root(start: str | Path | None = None) -> Path:
    if start is None and os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = Path(start or os.getcwd()).resolve()
    parts = here.parts
    for i in range(len(parts) - len(_DVC_TEMP_PARTS) + 1):
        if parts[i : i + len(_DVC_TEMP_PARTS)] == _DVC_TEMP_PARTS:
            return Path(*parts[:i])
    return here


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit checked out at `path` (the experiment's baseline inside DVC's copies)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path or os.getcwd(), capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def committed_file(name: str, path: str | Path | None = None) -> str | None:
    """`name` as committed at HEAD (`git show HEAD:<name>`), or None outside git or when absent."""
    try:
        result = subprocess.run(
            ["git", "show", f"HEAD:{name}"], cwd=path or os.getcwd(), capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None
