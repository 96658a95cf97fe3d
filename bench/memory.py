"""Peak memory of the shard, train and evaluate stages at 1x and 4x the data.

Each stage runs as its own process (as DVC runs it) on synthetic data of 100 and
400 images per class (500 and 2000 images); the peak is the memory (PSS) of
the stage and all its worker processes together, sampled every 50 ms.
Goal: under 15% growth from 1x to 4x: everything streams, nothing proportional
to the dataset is held.

    python bench/memory.py [--image-size N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    REPO,
    machine,
    run_with_peak_memory,
    save_results,
    stage,
    write_params,
)

MEASURED = ("shard", "train", "evaluate")
SIZES = {"1x": 100, "4x": 400}


def measure(per_class: int, image_size: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        write_params(work, {
            "data": {"synthetic_per_class": per_class, "image_size": image_size},
            "train": {"epochs": 1, "sample_every": 1},
        })
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = {}
        for name in ("download", "resize", *MEASURED):
            seconds, peak = run_with_peak_memory(stage(name), cwd=work, env=env)
            if name in MEASURED:
                result[name] = {"peak_pss_mib": round(peak, 1), "seconds": round(seconds, 1)}
        return result


def run(image_size: int | None = None) -> dict:
    """`image_size`: params.yaml's `data.image_size` unless given."""
    from colorizer.core.config import load_params

    image_size = image_size or load_params(REPO / "params.yaml").data.image_size
    result = {"machine": machine(), "image_size": image_size,
              "images": {label: per_class * 5 for label, per_class in SIZES.items()}}
    for label, per_class in SIZES.items():
        result[label] = measure(per_class, image_size)
    result["growth"] = {
        name: result["4x"][name]["peak_pss_mib"] / result["1x"][name]["peak_pss_mib"] - 1 for name in MEASURED
    }
    result["goal_under_15_percent_met"] = all(growth < 0.15 for growth in result["growth"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, help="default: params.yaml's data.image_size")
    args = parser.parse_args()
    result = run(args.image_size)
    save_results("memory", result)
    for name in MEASURED:
        print(f"{name:9} 1x {result['1x'][name]['peak_pss_mib']:7.0f} MiB   4x {result['4x'][name]['peak_pss_mib']:7.0f} MiB"
              f"   growth {100 * result['growth'][name]:+.1f}%")


if __name__ == "__main__":
    main()
