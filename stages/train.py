"""DVC stage `train`: fit the colorizer on the shards, logging to MLflow."""

import sys
from pathlib import Path

from colorizer.core.config import load_params
from colorizer.core.errors import run_stage
from colorizer.core.workspace import repo_root


def main() -> None:
    params = load_params()  # before importing TensorFlow: bad params fail in a second
    from colorizer.training.train import train

    summary = train(params, shards=Path(params.paths.shards), root=repo_root())
    if summary:  # None on the non-chief workers of a multi-worker run: the chief writes everything
        print(f"train: val mse {summary['val_mse']:.5f}, val accuracy {summary['val_accuracy']:.3f}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
