"""Test-time flip averaging, measured on the VALIDATION split of the models `quality.py` trained.

Averages the model's ab for a photo and (flipped back) for its mirror image: two forward
passes for a smoother, less noisy guess. Measured, not assumed: each model of
bench/work/quality/quality/<arch>-<seed>/ (`make bench-quality`'s) is scored on validation with and without it (no
retraining; the test split is not read). Writes bench/flip_average.json: per model the
two scores and per arch the mean and spread of the difference over seeds.

    python bench/flip_average.py   (after `make bench-quality`)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from common import REPO

WORK = REPO / "bench" / "work" / "quality"
OUT_JSON = REPO / "bench" / "flip_average.json"
KEYS = ("psnr", "accuracy", "auc", "colorfulness_ratio")


def score(model, shards: Path, threshold: float, flip: bool) -> dict:
    import numpy as np

    from colorizer.evaluation.evaluate import score_split

    def flip_averaged(x):
        ab = np.asarray(model.predict_on_batch(x))
        return (ab + np.asarray(model.predict_on_batch(x[:, :, ::-1]))[:, :, ::-1]) / 2

    summary = score_split(model, shards, "val", threshold, 50, predict=flip_averaged if flip else None)
    return {key: float(summary[key]) for key in KEYS}


def main() -> None:
    from colorizer.core.config import load_params
    from colorizer.model.modelio import load_model

    shards = WORK / "data" / "shards"
    threshold = load_params(REPO / "params.yaml").metrics.threshold
    report = {"split": "val", "models": {}, "difference": {}}
    models = WORK / "quality"  # bench/quality.py keeps each report's models in a folder named after it
    for folder in sorted(p for p in models.iterdir() if (p / "models" / "model.keras").exists()):
        model = load_model(folder / "models" / "model.keras")
        plain, averaged = score(model, shards, threshold, False), score(model, shards, threshold, True)
        report["models"][folder.name] = {"plain": plain, "flip_averaged": averaged}
        print(folder.name, {k: round(averaged[k] - plain[k], 4) for k in KEYS}, flush=True)
    for arch in sorted({name.split("-")[0] for name in report["models"]}):
        runs = [r for name, r in report["models"].items() if name.startswith(arch + "-")]
        report["difference"][arch] = {key: {
            "mean": statistics.mean(r["flip_averaged"][key] - r["plain"][key] for r in runs),
            "seed_sd_plain": statistics.stdev(r["plain"][key] for r in runs) if len(runs) > 1 else 0.0}
            for key in KEYS}
    OUT_JSON.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report["difference"], indent=2))


if __name__ == "__main__":
    main()
