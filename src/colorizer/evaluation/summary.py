"""`python -m colorizer.evaluation.summary`: the end-of-run report `make run` prints.

Model against the gray baseline, accuracy per class, and where every output is.
`--ui-link` prints only the MLflow UI address that opens the runs table, and `--store-uri` the
store it reads (`make ui`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from colorizer.core.config import load_params
from colorizer.core.workspace import repo_root
from colorizer.tracking.tracker import Tracker, redact, runs_page, tracking_uri

ROWS = (("accuracy", "accuracy (within {t:g} ab)", "{:.3f}"), ("acc@5", "accuracy (within 5 ab)", "{:.3f}"),
        ("auc", "AuC (0..150 ab)", "{:.3f}"), ("psnr", "PSNR (dB)", "{:.2f}"), ("mse", "MSE (ab/128)", "{:.4f}"),
        ("colorfulness", "colorfulness (truth {truth:.1f})", "{:.1f}"))


def summary_lines(result: dict) -> list[str]:
    lines = [f"{'test split (' + str(result['images']) + ' images)':<28}{'model':>10}{'gray':>10}"]
    for key, label, fmt in ROWS:
        label = label.format(t=result.get("threshold", 10), truth=result.get("colorfulness_truth", 0))
        lines.append(f"{label:<28}{fmt.format(result[key]):>10}{fmt.format(result['baseline'][key]):>10}")
    per_class = ", ".join(
        f"{name} {scores['accuracy']:.2f} (gray {scores['baseline']['accuracy']:.2f})"
        for name, scores in result["per_class"].items()
    )
    return lines + [f"accuracy per class: {per_class}"]


def runs_link(params, root: Path) -> str:
    """The UI address of this project's runs table; the UI's front page before the first run."""
    try:
        experiment_id = Tracker(params.mlflow, root).existing_experiment_id()
    except Exception:  # a store that is down still leaves the UI's address worth printing
        experiment_id = None
    return runs_page(experiment_id)


def main(argv: list[str]) -> None:
    params = load_params()
    paths, root = params.paths, repo_root()
    if "--store-uri" in argv:
        print(tracking_uri(params.mlflow, root))
        return
    if "--ui-link" in argv:
        print(f"MLflow UI: open {runs_link(params, root)}  (the runs table; Ctrl-C stops the UI)")
        return
    result = json.loads(Path(paths.eval_metrics).read_text())
    print("\n".join(summary_lines(result)))
    print()
    print(f"Metrics:              {paths.eval_metrics} (with the gray baseline and per class), {paths.train_metrics}")
    print(f"Sample colorizations: {paths.samples}/ (gray | predicted | truth)")
    print(f"Skipped images:       {paths.data_report}")
    print("Training curves:      dvc plots show   (writes dvc_plots/index.html)")
    print(f"Model card:           {paths.model_card}   (colorize --info)")
    print(f"MLflow runs:          {redact(tracking_uri(params.mlflow, root))}")
    print(f"  browse: make ui, then open {runs_link(params, root)}")


if __name__ == "__main__":
    from colorizer.core.errors import run_stage

    sys.exit(run_stage(lambda: main(sys.argv[1:])))
