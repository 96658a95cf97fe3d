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
import inference
import memory
import preprocess
import serving
import throughput
from common import RESULTS, machine, photo_folder, save_results


def collect_goals(results: dict) -> dict:
    """Every goal of every benchmark, as one flat dict of booleans."""
    goals = {f"preprocess.{k}": v for k, v in results["preprocess"].items() if k.startswith("goal")}
    goals.update({f"throughput.{k}": v for k, v in results["throughput"]["goals"].items()})
    goals["throughput.goal_10x_train_step_met"] = results["throughput"]["input_pipeline"]["goal_10x_train_step_met"]
    goals["memory.goal_under_15_percent_met"] = results["memory"]["goal_under_15_percent_met"]
    goals["dvc.goal_only_train_and_evaluate_met"] = results["dvc"]["goal_only_train_and_evaluate_met"]
    goals["serving.goal_every_request_right_and_server_up_met"] = results["serving"][
        "goal_every_request_right_and_server_up_met"]
    return goals


def table(results: dict) -> list[str]:
    p, t, m, d = results["preprocess"], results["throughput"], results["memory"], results["dvc"]
    pipeline, models, goals = t["input_pipeline"], t["models"], t["goals"]
    default = models["default@224"]
    c = t["comparison"]
    rows = [
        ("preprocess: ours vs naive (resize+shard)", f"{p['ours_images_per_s']:.0f} vs {p['naive_images_per_s']:.0f} img/s",
         f"{p['speedup_vs_naive']:.1f}x", ">= 4x", p["goal_speedup_vs_naive_met"]),
        ("preprocess: floor vs naive (bound of the above)", f"{p['floor_images_per_s']:.0f} vs "
         f"{p['naive_images_per_s']:.0f} img/s", f"{p['floor_over_naive']:.1f}x", "", None),
        ("preprocess: floor (decode+resize) vs ours", f"{p['floor_images_per_s']:.0f} vs {p['ours_images_per_s']:.0f} img/s",
         f"{p['floor_over_ours']:.2f}x", "", None),
        ("preprocess: floor vs two-pass design floor", f"{p['floor_images_per_s']:.0f} vs "
         f"{p['two_pass_floor_images_per_s']:.0f} img/s", f"{p['floor_over_two_pass_floor']:.2f}x", "-", None),
        ("matmul float32 (this run's peak)", f"{t['matmul_gflops']:.0f} GFLOP/s", "", "", None),
        ("train step time @128: default vs from-scratch hybrid", f"{models['default@128']['train_images_per_s']:.1f} vs "
         f"{models[throughput.SCRATCH_128]['train_images_per_s']:.1f} img/s", f"{c['default_over_scratch_step_time_128']:.2f}x",
         "<= 1.5x", goals["default_step_at_128_at_most_1_5x_from_scratch"]),
        ("train step time @224: default vs from-scratch hybrid", f"{default['train_images_per_s']:.1f} vs "
         f"{models[throughput.SCRATCH_224]['train_images_per_s']:.1f} img/s", f"{c['default_over_scratch_step_time_224']:.2f}x",
         "", None),
        ("training GFLOP/image @128: default vs from-scratch", f"{models['default@128']['flops']['training_profiler'] / 1e9:.2f} vs "
         f"{models[throughput.SCRATCH_128]['flops']['training_profiler'] / 1e9:.2f}",
         f"{c['default_over_scratch_training_flops_128']:.2f}x", "", None),
        ("streaming train loop vs keras fit @224", f"{models['default@224 streaming']['train_images_per_s']:.1f} vs "
         f"{models['default@224 keras fit']['train_images_per_s']:.1f} img/s", f"{c['streaming_loop_over_keras_fit']:.2f}x",
         ">= 1x", goals["streaming_loop_at_least_keras_fit"]),
        ("input pipeline vs default train step @224", f"{pipeline['images_per_s']:.0f} vs "
         f"{default['train_images_per_s']:.1f} img/s", f"{pipeline['over_train_step']:.1f}x", ">= 10x",
         pipeline["goal_10x_train_step_met"]),
    ]
    for name, r in models.items():
        infer = f", infer {r['inference_images_per_s']:.0f}" if "inference_images_per_s" in r else ""
        rows.append((f"model {name}"[:60], f"train {r['train_images_per_s']:.1f}{infer} img/s",
                     f"{r['flops']['training_profiler'] / 1e9:.2f} GF", f"MFU {100 * r['utilisation']:.1f}%", None))
    i = results["inference"]
    rows.append(("colorize CLI: one 12 MP photo", f"{i['photo_12mp']['wall_seconds']:.1f} s, peak RSS "
                 f"{i['photo_12mp']['peak_rss_mib']:.0f} MiB", "", "", None))
    rows.append(("colorize CLI: 100 photos of 150 px", f"{i['folder_100x150px']['images_per_s']:.1f} img/s, peak RSS "
                 f"{i['folder_100x150px']['peak_rss_mib']:.0f} MiB", "", "", None))
    s = results["serving"]
    for case, row in s["cases"].items():
        rows.append((f"mlflow models serve: {case} clients", f"p50 {row['p50_seconds']:.2f} s, p95 {row['p95_seconds']:.2f} s, "
                     f"peak {row['peak_pss_mib']} MiB", "", "all right", row["all_good_answered"] and row["all_bad_4xx"]))
    rows.append(("mlflow models serve: up after every case", "", "", "up", s["server_up_after"]))
    for stage_name, growth in m["growth"].items():
        rows.append((f"peak PSS {stage_name}, {m['images']['1x']} -> {m['images']['4x']} images",
                     f"{m['1x'][stage_name]['peak_pss_mib']:.0f} -> {m['4x'][stage_name]['peak_pss_mib']:.0f} MiB",
                     f"{100 * growth:+.1f}%", "< +15%", growth < 0.15))
    rows.append(("no-op dvc repro", f"{d['noop_repro_seconds']:.2f} s", "", "", None))
    rows.append(("stages re-run by dvc exp run -S lr=...", ", ".join(d["stages_rerun_after_lr_change"]), "",
                 "train, evaluate", d["goal_only_train_and_evaluate_met"]))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'benchmark':{width}}  {'measured':40} {'ratio':>8}  {'goal':16} met"]
    for name, measured, ratio, goal, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:{width}}  {measured:40} {ratio:>8}  {goal:16} {mark}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--table", action="store_true",
                        help="only print the table of bench/results.json (after re-running one benchmark on its own)")
    args = parser.parse_args()
    if args.table:
        results = json.loads(RESULTS.read_text())
        results["goals"] = collect_goals(results)
        try:
            lines = table(results)
        except KeyError as err:  # before the file is rewritten: it stays as it was
            raise SystemExit(f"{RESULTS} lacks {err} (written by an older make bench?): run make bench") from err
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print("\n".join(lines))
        return
    data = photo_folder(args.data)
    started = time.perf_counter()
    results = {"machine": machine()}
    for name, measure in (("preprocess", lambda: preprocess.run(data)), ("throughput", lambda: throughput.run(data)),
                          ("memory", memory.run), ("dvc", dvc_overhead.run),
                          ("inference", lambda: inference.run(data)), ("serving", lambda: serving.run(data))):
        results[name] = measure()
        save_results(name, results[name])  # each part kept as soon as measured
    results["goals"] = collect_goals(results)
    results["seconds"] = round(time.perf_counter() - started)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("\n".join(table(results)))
    print(f"\n{results['machine']}; {results['seconds']} s in all; details in {RESULTS.relative_to(RESULTS.parents[1])}")


if __name__ == "__main__":
    main()
