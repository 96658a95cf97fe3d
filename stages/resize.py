"""DVC stage `resize`: decode, orient, fit to data.image_size; write the data report."""

import sys
from pathlib import Path

from colorizer.core.errors import run_stage


def main() -> None:
    # Imported here, inside run_stage: a Ctrl-C during the imports (TensorFlow, pools: the first
    # second) is then its one line, not a traceback.
    from colorizer.core.config import load_params
    from colorizer.prepare.resize import resize

    params = load_params()
    paths = params.paths
    report = resize(params.data, raw=Path(paths.raw), out=Path(paths.resized), report_path=Path(paths.data_report))
    print(f"resize: {report['images']} images; {report['skipped_count']} skipped (see {paths.data_report})")


if __name__ == "__main__":
    sys.exit(run_stage(main))
