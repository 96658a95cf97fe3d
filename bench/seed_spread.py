"""Mean ± standard deviation over training seeds of DVC experiments: what `dvc exp show` leaves out.

A sweep is run with DVC itself, one experiment per variant and seed, e.g. on validation only:

    dvc exp run --queue train -n global-43 -S train.seed=43 -S model.backbone=efficientnet_lite0
    dvc queue start -j 1

This groups the finished experiments of a project by their params less `train.seed`, names
each group by the params it changes from the project's own params.yaml, and prints one
markdown row per group: the seeds, and mean ± sd of each metric of `metrics/train.json`.

    python bench/seed_spread.py [--project DIR] [--all-commits] [--metrics val_accuracy_decoded val_psnr_decoded ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

METRICS = ("val_accuracy_decoded", "val_psnr_decoded", "val_colorfulness_ratio_decoded", "seconds")
METRICS_FILE = "metrics/train.json"
SEED = "train.seed"


def experiments(project: Path, all_commits: bool = False) -> tuple[dict, list[dict]]:
    """(the workspace's flat params, [{name, params, metrics}] of every finished experiment of
    the current commit, or of every commit)."""
    command = [str(Path(sys.executable).parent / "dvc"), "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    shown = subprocess.run(command, cwd=project, capture_output=True, text=True, check=True).stdout
    records = json.loads(shown)
    workspace = _flat(records[0]["data"]["params"]["params.yaml"]["data"])
    found = []
    for record in records:
        for experiment in record.get("experiments") or []:
            for revision in experiment["revs"]:
                metrics = revision["data"]["metrics"].get(METRICS_FILE, {}).get("data")
                if metrics:
                    found.append({"name": revision["name"], "metrics": metrics,
                                  "params": _flat(revision["data"]["params"]["params.yaml"]["data"])})
    return workspace, found


def groups(workspace: dict, found: list[dict]) -> dict[str, list[dict]]:
    """Experiments by what they change from the workspace's params (besides the seed)."""
    grouped: dict[str, list[dict]] = {}
    for experiment in found:
        changed = {k: v for k, v in experiment["params"].items() if k != SEED and workspace.get(k) != v}
        label = ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "params.yaml"
        grouped.setdefault(label, []).append(experiment)
    return grouped


def table(grouped: dict[str, list[dict]], metrics: tuple[str, ...]) -> list[str]:
    lines = ["| variant | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for label, members in sorted(grouped.items()):
        seeds = sorted(int(m["params"][SEED]) for m in members)
        cells = []
        for metric in metrics:
            values = [m["metrics"][metric] for m in members if metric in m["metrics"]]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}" if values else "—")
        lines.append(f"| {label} | {', '.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return lines


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the DVC project (default: here)")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), help=f"keys of {METRICS_FILE}")
    parser.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    args = parser.parse_args()
    workspace, found = experiments(args.project, args.all_commits)
    print("\n".join(table(groups(workspace, found), tuple(args.metrics))))


if __name__ == "__main__":
    main()
