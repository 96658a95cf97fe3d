"""`make bench`: every benchmark in one run; prints a table and writes bench/results.json.

Each figure is a ratio against something measured in the same run on the same
machine (timings alone are noise across machines).

    python bench/run_all.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import time

import dvc_overhead
import memory
import preprocess
import throughput
from common import RESULTS, machine, photo_folder


def table(results: dict) -> list[str]:
    p, t, m, d = results["preprocess"], results["throughput"], results["memory"], results["dvc"]
    pipeline = t["input_pipeline"]
    rows = [
        ("preprocess: ours vs naive (resize+shard)", f"{p['ours_images_per_s']:.0f} vs {p['naive_images_per_s']:.0f} img/s",
         f"{p['speedup_vs_naive']:.1f}x", ">= 4x", p["goal_speedup_vs_naive_met"]),
        ("preprocess: floor (decode+resize) vs ours", f"{p['floor_images_per_s']:.0f} vs {p['ours_images_per_s']:.0f} img/s",
         f"{p['floor_over_ours']:.2f}x", "<= 1.5x", p["goal_within_1_5x_of_floor_met"]),
        ("input pipeline vs hybrid train step @224", f"{pipeline['images_per_s']:.0f} vs "
         f"{t['models']['hybrid@224']['train_images_per_s']:.1f} img/s", f"{pipeline['over_train_step']:.1f}x", ">= 10x",
         pipeline["goal_10x_train_step_met"]),
        ("input pipeline vs hybrid inference @224", f"{pipeline['images_per_s']:.0f} vs "
         f"{t['models']['hybrid@224']['inference_images_per_s']:.1f} img/s", f"{pipeline['over_inference']:.1f}x", "-", None),
    ]
    for name, rates in t["models"].items():
        rows.append((f"model {name}", f"train {rates['train_images_per_s']:.1f}, infer "
                     f"{rates['inference_images_per_s']:.1f} img/s", "", "", None))
    for stage_name, growth in m["growth"].items():
        rows.append((f"peak PSS {stage_name}, {m['images']['1x']} -> {m['images']['4x']} images",
                     f"{m['1x'][stage_name]['peak_pss_mib']:.0f} -> {m['4x'][stage_name]['peak_pss_mib']:.0f} MiB",
                     f"{100 * growth:+.1f}%", "< +15%", growth < 0.15))
    rows.append(("no-op dvc repro", f"{d['noop_repro_seconds']:.2f} s", "", "", None))
    rows.append(("stages re-run by dvc exp run -S lr=...", ", ".join(d["stages_rerun_after_lr_change"]), "",
                 "train, evaluate", d["goal_only_train_and_evaluate_met"]))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'benchmark':{width}}  {'measured':34} {'ratio':>8}  {'goal':16} met"]
    for name, measured, ratio, goal, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:{width}}  {measured:34} {ratio:>8}  {goal:16} {mark}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    args = parser.parse_args()
    data = photo_folder(args.data)
    started = time.perf_counter()
    results = {
        "machine": machine(),
        "preprocess": preprocess.run(data, 224),
        "throughput": throughput.run(data, 16),
        "memory": memory.run(224),
        "dvc": dvc_overhead.run(),
    }
    results["seconds"] = round(time.perf_counter() - started)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("\n".join(table(results)))
    print(f"\n{results['machine']}; {results['seconds']} s in all; details in {RESULTS.relative_to(RESULTS.parents[1])}")


if __name__ == "__main__":
    main()
