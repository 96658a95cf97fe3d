"""DVC stage `train`: fit the colorizer on the shards, logging to MLflow."""

import sys
from pathlib import Path

from colorizer.core.errors import run_stage


def main() -> None:
    # Imported here, inside run_stage: a Ctrl-C during the imports (TensorFlow, pools: the first
    # second) is then its one line, not a traceback.
    from colorizer.core.config import load_params
    from colorizer.core.workspace import repo_root
    params = load_params()  # before importing TensorFlow: bad params fail in a second
    from colorizer.training.train import train

    summary = train(params, shards=Path(params.paths.shards), root=repo_root())
    if summary:  # None on the non-chief workers of a multi-worker run: the chief writes everything
        print(f"train: val mse {summary['val_mse']:.5f}, val accuracy {summary['val_accuracy']:.3f}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
