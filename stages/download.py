"""DVC stage `download`: the source images -> data/raw/<split>/<class>/<file> + manifest."""

import sys
from pathlib import Path

from colorizer.core.errors import run_stage


def main() -> None:
    # Imported here, inside run_stage: a Ctrl-C during the imports (TensorFlow, pools: the first
    # second) is then its one line, not a traceback.
    from colorizer.core.config import load_params
    from colorizer.core.workspace import repo_root
    from colorizer.prepare.download import download

    params = load_params()
    report = download(params, out=Path(params.paths.raw), root=repo_root())
    skipped = len(report["skipped"]) + len(report["duplicates"])
    print(f"download: {report['images']} images of {len(report['classes'])} classes; {skipped} left out")


if __name__ == "__main__":
    sys.exit(run_stage(main))
