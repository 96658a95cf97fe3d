"""DVC stage `evaluate`: test-split metrics next to the gray baseline, sample grid, MLflow."""

import sys
from pathlib import Path

from colorizer.core.errors import run_stage


def main() -> None:
    # Imported here, inside run_stage: a Ctrl-C during the imports (TensorFlow, pools: the first
    # second) is then its one line, not a traceback.
    from colorizer.core.config import load_params
    from colorizer.core.workspace import repo_root
    params = load_params()  # before importing TensorFlow: bad params fail in a second
    from colorizer.evaluation.evaluate import evaluate

    result = evaluate(params, shards=Path(params.paths.shards), root=repo_root())
    base = result["baseline"]
    print(
        f"evaluate: accuracy {result['accuracy']:.3f} (gray {base['accuracy']:.3f}), "
        f"psnr {result['psnr']:.2f} dB (gray {base['psnr']:.2f}), auc {result['auc']:.3f} (gray {base['auc']:.3f})"
    )


if __name__ == "__main__":
    sys.exit(run_stage(main))
