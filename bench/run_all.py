"""`make bench`: every benchmark in one run; prints a table and writes bench/results.json.

Each figure is a ratio against something measured in the same run on the same
machine (timings alone are noise across machines).

    python bench/run_all.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import dvc_overhead
import inference
import memory
import preprocess
import quality
import throughput
from common import (
    BASELINE_NETWORK,
    CUT_NETWORK,
    REPO,
    RESULTS,
    machine,
    photo_folder,
    save_results,
)

CUT_VARIANT = "lowres_w16"  # common.CUT_NETWORK in bench/quality_seeds.py
QUALITY_SEEDS = REPO / "bench" / "quality_seeds.json"  # written by `make bench-seeds` (~10 min): not re-run here
# make bench-quality's recipe (3200 photos at 128 px, 3 seeds) with issue 11's network (width 24, concat
# decoder; the default until this one replaced it), 24 epochs: what the compute cut must match.
QUALITY_BASELINE = REPO / "bench" / "quality_issue11.json"
QUALITY_FULL_CUT = REPO / "bench" / "quality_lowres_w16.json"  # the cut on the same recipe, 24 epochs
# The cut with 30 epochs (`make bench-quality`'s report of the default now): its total training compute
# must stay at most half the baseline's.
QUALITY_HALF_COMPUTE_CUT = REPO / "bench" / "quality.json"
HALF = 0.5
ARCHS = ("hybrid", "autoencoder")
NETWORK_PARAMS = tuple(f"model.{key}" for key in CUT_NETWORK)  # what the cut changes


class Unavailable(Exception):
    """A quality verdict that the saved reports cannot give (the reason says why)."""


def quality_summary(cut_flops_ratio: float | None) -> dict:
    """The compute cut's colour against issue 11's network's on validation, over seeds: on the
    short screen (bench/quality_seeds.json) and at full length (make bench-quality's recipe), from
    those files. No worse "within the seed-to-seed spread" = lower by at most the larger of the two
    seed standard deviations (the tie rule of quality.py's hybrid-vs-autoencoder verdicts).

    Issue 11 asks for the same colour at half the training compute or less: each arch passes at
    full length if the cut holds at the same epochs (0.39x the compute) or with more epochs that
    keep its total compute, `cut_flops_ratio` (per image, from throughput) x its epochs over the
    baseline's, at most half. The short screen must hold as well.

    A verdict the reports cannot give (a file missing or half-written, recipes that differ) is
    recorded with its reason; the goal is then unknown (None) unless the verdicts at hand decide it."""
    verdicts = {"screen": _screen_verdict}
    for arch in ARCHS:
        verdicts[f"full_{arch}"] = lambda arch=arch: _full_verdict(arch)
        verdicts[f"half_{arch}"] = lambda arch=arch: _half_compute_verdict(arch, cut_flops_ratio)
    parts = {}
    for name, verdict in verdicts.items():
        try:
            parts[name] = verdict()
        except Unavailable as reason:
            parts[name] = {"unavailable": str(reason)}
    checks = [_within(parts["screen"])] + [_either(_within(parts[f"full_{a}"]), _within(parts[f"half_{a}"])) for a in ARCHS]
    parts["goal_cut_within_spread_met"] = False if False in checks else (None if None in checks else True)
    return parts


def _half_compute_verdict(arch: str, cut_flops_ratio: float | None) -> dict:
    if cut_flops_ratio is None:
        raise Unavailable("no training FLOPs of the cut in results.json (make bench)")
    return _full_verdict(arch, QUALITY_HALF_COMPUTE_CUT, cut_flops_ratio)


def _within(part: dict) -> bool | None:
    return None if "unavailable" in part else part["accuracy_within_spread"] and part["psnr_within_spread"]


def _either(first: bool | None, second: bool | None) -> bool | None:
    if True in (first, second):
        return True
    return None if None in (first, second) else False


def _read_report(path: Path) -> dict:
    if not path.exists():
        raise Unavailable(f"{path.name} not found")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise Unavailable(f"{path.name} is not valid JSON ({err})") from err
    if not isinstance(report, dict):
        raise Unavailable(f"{path.name} holds a JSON {type(report).__name__}, not a report")
    return report


def _screen_verdict() -> dict:
    report = _read_report(QUALITY_SEEDS)
    variants = report.get("variants", {})
    missing = [name for name in ("before", CUT_VARIANT) if "summary" not in variants.get(name, {})]
    if missing:
        raise Unavailable(f"{QUALITY_SEEDS.name} has no finished {' or '.join(missing)} (make bench-seeds)")
    return {"recipe": {k: report.get(k) for k in ("image_size", "epochs", "max_per_class", "split")},
            "seeds": len(variants[CUT_VARIANT]["runs"]),
            **_verdicts(variants["before"]["summary"], variants[CUT_VARIANT]["summary"])}


def _full_verdict(arch: str, cut_path: Path = QUALITY_FULL_CUT, cut_flops_ratio: float | None = None) -> dict:
    """Issue 11's network's make-bench-quality runs against the cut's on the same recipe (but the
    network, and with `cut_flops_ratio` given the epochs, as long as the cut's total compute is at most half)."""
    full, cut = _read_report(QUALITY_BASELINE), _read_report(cut_path)
    for path, report in ((QUALITY_BASELINE, full), (cut_path, cut)):
        if not isinstance(report.get("recipe"), dict):
            raise Unavailable(f"{path.name} has no recipe (not written by bench/quality.py, or by an older one)")
    _require_network(QUALITY_BASELINE, full, BASELINE_NETWORK)
    _require_network(cut_path, cut, CUT_NETWORK)
    more_epochs = cut_flops_ratio is not None
    ours, theirs = _recipe_but_network(full, more_epochs), _recipe_but_network(cut, more_epochs)
    if ours != theirs:
        raise Unavailable(f"{QUALITY_BASELINE.name} and {cut_path.name} were measured on different recipes")
    epochs = {"baseline": full["recipe"]["epochs"], "cut": cut["recipe"]["epochs"]}
    compute = {}
    if more_epochs:
        compute["training_compute_over_baseline"] = cut_flops_ratio * epochs["cut"] / epochs["baseline"]
        if compute["training_compute_over_baseline"] > HALF:
            raise Unavailable(f"{cut_path.name}: {epochs['cut']} epochs of the cut cost "
                              f"{compute['training_compute_over_baseline']:.2f}x the baseline's training compute, "
                              "more than half")
    recipe = {"image_size": full["recipe"]["image_size"], "epochs": epochs, "split": "val"}
    wider, cheaper = full.get("runs", {}).get(arch, {}), cut.get("runs", {}).get(arch, {})
    return {"recipe": recipe, "seeds": min(len(wider), len(cheaper)), **compute,
            **_verdicts(_validation(wider, QUALITY_BASELINE), _validation(cheaper, cut_path))}


def _require_network(path: Path, report: dict, network: dict) -> None:
    """The report's runs trained `network`."""
    params = _report_params(report)
    if params is None:
        raise Unavailable(f"{path.name} records no params: which network it measured is unknown")
    for key, value in network.items():
        recorded = params.get(f"model.{key}", PARAMS_BEFORE_THEY_EXISTED.get(f"model.{key}"))
        if recorded != value:
            raise Unavailable(f"{path.name} was measured with model.{key}={recorded}, not {value}")


# Params added after a report was written: its runs had what the code did before the param existed.
PARAMS_BEFORE_THEY_EXISTED = {"model.decoder": "concat"}


def _report_params(report: dict) -> dict | None:
    """The params a report's runs share: its recipe's, or, in reports from before recipes recorded
    them, those of the one run recorded at the top level, less the paths and what differs per run."""
    params = report["recipe"].get("params")
    if params is None and isinstance(report.get("params"), dict):
        params = quality.shared(report["params"])
    if params is None:
        return None
    return {**PARAMS_BEFORE_THEY_EXISTED, **params}


def _recipe_but_network(report: dict, but_epochs: bool = False) -> dict:
    """A make-bench-quality report's recipe (with its params), less the params that make the
    network (and the epochs)."""
    recipe = dict(report.get("recipe", {}))
    ignored = NETWORK_PARAMS + (("train.epochs",) if but_epochs else ())
    if but_epochs:
        recipe.pop("epochs", None)
    recipe["params"] = {k: v for k, v in (_report_params(report) or {}).items() if k not in ignored}
    # A network given with --set (model.width=16) is the network too.
    recipe["overrides"] = [item for item in recipe.get("overrides", []) if item.partition("=")[0] not in NETWORK_PARAMS]
    return recipe


def _validation(runs: dict, path: Path) -> dict:
    """Mean, sd and min over seeds of the validation scores at the decoding `train` chose."""
    if len(runs) < 2:
        raise Unavailable(f"{path.name}: {len(runs)} finished run(s) of a model, a spread needs at least 2")
    chosen = []
    for seed, run in runs.items():
        row = next((row for row in run.get("val_frontier", [])
                    if row["prior_correction"] == run.get("prior_correction")), None)
        if row is None:
            raise Unavailable(f"{path.name}: seed {seed} has no validation score at its chosen decoding "
                              "(model.prior_correction was not auto?)")
        chosen.append(row)
    return {key: {"mean": statistics.mean(row[key] for row in chosen), "std": statistics.stdev(row[key] for row in chosen),
                  "min": min(row[key] for row in chosen)} for key in ("accuracy", "psnr")}


def _verdicts(baseline: dict, cut: dict) -> dict:
    out = {"baseline": {k: baseline[k] for k in ("accuracy", "psnr")}, "cut": {k: cut[k] for k in ("accuracy", "psnr")}}
    for key in ("accuracy", "psnr"):
        spread = max(baseline[key]["std"], cut[key]["std"])
        out[f"{key}_difference"] = cut[key]["mean"] - baseline[key]["mean"]
        out[f"{key}_spread"] = spread
        out[f"{key}_within_spread"] = out[f"{key}_difference"] >= -spread
    return out


def _cut_flops_ratio(results: dict) -> float | None:
    """The cut's training FLOPs per image over issue 11's network's (224 px; at 128 px the ratio of
    these all-convolutional networks is the same within a few percent)."""
    return results.get("throughput", {}).get("comparison", {}).get("cut_training_flops_over_baseline")


def collect_goals(results: dict) -> dict:
    """Every goal of every benchmark, as one flat dict of booleans."""
    goals = {f"preprocess.{k}": v for k, v in results["preprocess"].items() if k.startswith("goal")}
    goals.update({f"throughput.{k}": v for k, v in results["throughput"]["goals"].items()})
    goals["throughput.goal_10x_train_step_met"] = results["throughput"]["input_pipeline"]["goal_10x_train_step_met"]
    goals["memory.goal_under_15_percent_met"] = results["memory"]["goal_under_15_percent_met"]
    goals["dvc.goal_only_train_and_evaluate_met"] = results["dvc"]["goal_only_train_and_evaluate_met"]
    goals["quality.goal_cut_within_spread_met"] = results["quality"]["goal_cut_within_spread_met"]
    return goals


def table(results: dict) -> list[str]:
    p, t, m, d = results["preprocess"], results["throughput"], results["memory"], results["dvc"]
    pipeline, models, goals = t["input_pipeline"], t["models"], t["goals"]
    default = models["default@224"]
    cut, baseline = models.get(throughput.CUT_ROW, default), models.get(throughput.BASELINE_ROW, default)
    c = t["comparison"]
    rows = [
        ("preprocess: ours vs naive (resize+shard)", f"{p['ours_images_per_s']:.0f} vs {p['naive_images_per_s']:.0f} img/s",
         f"{p['speedup_vs_naive']:.1f}x", ">= 4x", p["goal_speedup_vs_naive_met"]),
        ("preprocess: floor vs naive (bound of the above)", f"{p['floor_images_per_s']:.0f} vs "
         f"{p['naive_images_per_s']:.0f} img/s", f"{p['floor_over_naive']:.1f}x", "", None),
        ("preprocess: floor (decode+resize) vs ours", f"{p['floor_images_per_s']:.0f} vs {p['ours_images_per_s']:.0f} img/s",
         f"{p['floor_over_ours']:.2f}x", "<= 1.5x", p["goal_within_1_5x_of_floor_met"]),
        ("preprocess: floor vs two-pass design floor", f"{p['floor_images_per_s']:.0f} vs "
         f"{p['two_pass_floor_images_per_s']:.0f} img/s", f"{p['floor_over_two_pass_floor']:.2f}x", "-", None),
        ("matmul float32 (this run's peak)", f"{t['matmul_gflops']:.0f} GFLOP/s", "", "", None),
        ("training GFLOP/image @224: cut vs issue baseline", f"{cut['flops']['training_profiler'] / 1e9:.2f} vs "
         f"{baseline['flops']['training_profiler'] / 1e9:.2f}", f"{c['cut_training_flops_over_baseline']:.2f}x", "<= 0.40x",
         goals["cut_training_flops_at_most_40pct_of_baseline"]),
        ("utilisation (MFU) @224: cut vs issue baseline", f"{100 * cut['utilisation']:.1f}% vs "
         f"{100 * baseline['utilisation']:.1f}%", "", ">= baseline", goals["cut_utilisation_not_lower_than_baseline"]),
        ("train img/s @224: cut vs issue baseline", f"{cut['train_images_per_s']:.1f} vs "
         f"{baseline['train_images_per_s']:.1f}", f"{c['cut_train_speedup_over_baseline']:.2f}x", "", None),
        *([("train img/s @224: default vs issue baseline", f"{default['train_images_per_s']:.1f} vs "
            f"{baseline['train_images_per_s']:.1f}", f"{c['default_train_speedup_over_baseline']:.2f}x", "", None)]
          if throughput.CUT_ROW in models else []),  # the cut's row above is the default's when it is the default
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
    q = results["quality"]
    parts = [("screen", "short screen")] + [(f"full_{a}", f"full length, {a}") for a in ARCHS]
    parts += [(f"half_{a}", f"full, {a}, cut {q[f'half_{a}']['recipe']['epochs']['cut']} ep "
                            f"({q[f'half_{a}']['training_compute_over_baseline']:.2f}x compute)")
              if "unavailable" not in q[f"half_{a}"] else (f"half_{a}", f"full, {a}, cut more epochs") for a in ARCHS]
    for part, label in parts:
        v = q[part]
        if "unavailable" in v:
            rows.append((f"val quality, {label}: cut vs issue-11 net", f"unavailable: {v['unavailable']}"[:60], "", "", None))
            continue
        for key in ("accuracy", "psnr"):
            rows.append((f"val {key}, {label}: cut vs issue-11 net", f"{v['cut'][key]['mean']:.4f} vs "
                         f"{v['baseline'][key]['mean']:.4f} (spread {v[f'{key}_spread']:.4f})",
                         f"{v[f'{key}_difference']:+.4f}", ">= -spread", v[f"{key}_within_spread"]))
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
        results["quality"] = quality_summary(_cut_flops_ratio(results))
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
                          ("inference", lambda: inference.run(data))):
        results[name] = measure()
        save_results(name, results[name])  # each part kept as soon as measured
    results["quality"] = quality_summary(_cut_flops_ratio(results))
    results["goals"] = collect_goals(results)
    results["seconds"] = round(time.perf_counter() - started)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print("\n".join(table(results)))
    print(f"\n{results['machine']}; {results['seconds']} s in all; details in {RESULTS.relative_to(RESULTS.parents[1])}")


if __name__ == "__main__":
    main()
