"""`make bench-quality`: colour on real photos, on the held-out test split, over training seeds.

The models: gray (ab = 0), the plain autoencoder, the hybrid with its global branch trained
from scratch (`model.backbone: none`), and the default, the hybrid with its ImageNet-
pretrained backbone. Each is trained with the repository's params.yaml on a Kaggle-layout
folder at 128 x 128, only the data, the size, `train.seed` and the model's own overrides
(`MODELS`) changed, once per seed. Everything chosen is chosen on validation: the decoding's
prior correction by `model.prior_correction: auto` inside `train` (its validation frontier is
recorded here). Each model then reads the test split once, in the pipeline's own `evaluate`.

Writes bench/quality.json (per model and seed: every test metric, per class, training
seconds, the validation frontier; per model mean, sd, min and max over seeds; the default
against each other model, a difference within the larger seed sd being a tie; the goals) and
bench/quality_grid.jpg (gray | each model | truth on 8 fixed test photos, the last seed's
models, those still on disk). Runs already in quality.json for the same recipe are kept, so an interrupted run
continues where it stopped.

Goals, on the default's mean over seeds, at most 20 minutes of training per model here:
PSNR >= gray + 2.0 dB, accuracy (within 10 ab) >= 62%, colourfulness >= 75% of the photos'
own, all at once; and it beats the autoencoder beyond the seed spread on PSNR, accuracy and
colourfulness at once.

    python bench/quality.py [--data DIR] [--image-size 128] [--seeds 3] [--models ...] [--out bench/quality.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import yaml
from common import REPO, machine, matmul_gflops, photo_folder

# The from-scratch networks train for the epochs they were chosen at (docs/decisions/compute-cut.md);
# the pretrained hybrid for params.yaml's (docs/decisions/pretrained-backbone.md).
FROM_SCRATCH = {"model.backbone": "none", "train.epochs": 25, "train.scene_weight": 0.0}
MODELS = {
    "autoencoder": {**FROM_SCRATCH, "model.arch": "autoencoder"},
    "hybrid_scratch": FROM_SCRATCH,
    "hybrid": {},  # params.yaml's model: the default
}
DEFAULT = "hybrid"
FIRST_SEED = 42  # params.yaml's train.seed; further seeds count up from it
METRICS = ("psnr", "psnr_gain_db", "accuracy", "auc", "colorfulness_ratio", "bias_a", "bias_b", "mse")
COMPARED = ("psnr", "accuracy", "colorfulness_ratio", "auc")
GOALS = {"psnr_gain_db": 2.0, "accuracy": 0.62, "colorfulness_ratio": 0.75}
TRAINING_BUDGET_S = 20 * 60
WORK = REPO / "bench" / "work" / "quality"
OUT_JSON = REPO / "bench" / "quality.json"
OUT_GRID = REPO / "bench" / "quality_grid.jpg"


def params_for(data: Path, image_size: int, model: str, seed: int, runs: Path = WORK):
    """params.yaml with the recipe's data and `model`'s overrides; outputs in `runs`/<model>-<seed>."""
    from colorizer.core.config import params_from_dict

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source=str(data), image_size=image_size)
    raw["train"].update(seed=seed, resume=False)
    for key, value in MODELS[model].items():
        section, name = key.split(".")
        raw[section][name] = value
    folder = (runs / f"{model}-{seed}").relative_to(REPO)  # stage paths are relative to the repository
    raw["paths"] = {key: str(folder / value) for key, value in raw["paths"].items()}
    return params_from_dict(raw)


def prepare(params) -> Path:
    """download -> resize -> shard once into bench/work/quality/data (shared by every model and seed)."""
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    data = WORK / "data"
    if (data / "shards" / "meta.json").exists() and (data / "recipe.json").exists() \
            and json.loads((data / "recipe.json").read_text()) == data_recipe(params):
        return data
    shutil.rmtree(data, ignore_errors=True)
    download(params, out=data / "raw", root=REPO)
    resize(params.data, raw=data / "raw", out=data / "resized", report_path=data / "data_report.json")
    shard(resized=data / "resized", out=data / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    (data / "recipe.json").write_text(json.dumps(data_recipe(params)))
    return data


def data_recipe(params) -> dict:
    """What the shared shards depend on."""
    return {"source": params.data.source, "image_size": params.data.image_size, "seed": params.data.seed,
            "max_per_class": params.data.max_per_class}


def model_recipe(params) -> dict:
    """Every param a model's runs share (not the paths or the seed): another recipe is not averaged in."""
    flat = json.loads(json.dumps(params.flat(), default=str))
    return {k: v for k, v in flat.items() if not k.startswith("paths.") and k != "train.seed"}


def one_run(params, data: Path) -> dict:
    """Train (choosing the prior correction on validation), then the pipeline's evaluate: test, once."""
    from colorizer.evaluation.evaluate import evaluate
    from colorizer.training.train import train

    gflops = round(matmul_gflops(), 1)  # runs resumed across sessions ran on differently busy machines
    started = time.perf_counter()
    summary = train(params, shards=data / "shards", root=WORK)
    seconds = time.perf_counter() - started
    result = evaluate(params, shards=data / "shards", root=WORK)
    scores = {key: float(result[key]) for key in METRICS if key in result}
    scores["psnr_gain_db"] = float(result["psnr"] - result["baseline"]["psnr"])
    return {**scores, "training_seconds": round(seconds, 1), "matmul_gflops": gflops, "epochs": summary["epochs"],
            "prior_correction": summary.get("prior_correction"), "val_frontier": validation_frontier(params),
            "gray": {key: float(result["baseline"][key]) for key in ("psnr", "accuracy", "auc", "colorfulness_ratio")},
            "per_class": {name: {"psnr": s["psnr"], "accuracy": s["accuracy"], "gray_psnr": s["baseline"]["psnr"],
                                 "gray_accuracy": s["baseline"]["accuracy"], "colorfulness_ratio": s["colorfulness_ratio"]}
                          for name, s in result["per_class"].items()}}


def validation_frontier(params) -> list[dict]:
    """The validation metrics `train` chose the decoding from: its MLflow table (none without `auto`)."""
    import tempfile

    from mlflow import MlflowClient

    from colorizer.training.train import DECODING_TABLE

    run_id = json.loads(Path(params.paths.run_info).read_text())["run_id"]
    client = MlflowClient()
    if DECODING_TABLE not in {item.path for item in client.list_artifacts(run_id, Path(DECODING_TABLE).parent.as_posix())}:
        return []
    with tempfile.TemporaryDirectory() as folder:
        table = json.loads(Path(client.download_artifacts(run_id, DECODING_TABLE, folder)).read_text())
    return [dict(zip(table["columns"], row)) for row in table["data"]]


def spread(runs: list[dict]) -> dict:
    """Mean, standard deviation (n - 1), min and max over seeds of every metric."""
    return {key: {"mean": statistics.mean(r[key] for r in runs),
                  "std": statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0,
                  "min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
            for key in (*METRICS, "training_seconds")}


def compare(ours: dict, theirs: dict) -> dict:
    """Ours minus theirs per metric; a tie when the difference of means is within the larger of
    the two seed standard deviations (the seed-to-seed spread)."""
    out = {}
    for key in COMPARED:
        difference = ours[key]["mean"] - theirs[key]["mean"]
        noise = max(ours[key]["std"], theirs[key]["std"])
        out[key] = {"difference": difference, "spread": noise,
                    "verdict": "tie" if abs(difference) <= noise else ("better" if difference > 0 else "worse")}
    return out


def goals(summary: dict, comparisons: dict, seeds: int) -> dict:
    default = summary[DEFAULT]
    met = {f"{key}_at_least_{value}": default[key]["mean"] >= value for key, value in GOALS.items()}
    met["all_three_at_once"] = all(met.values())
    met["within_20_minutes_per_model"] = all(s["training_seconds"]["max"] <= TRAINING_BUDGET_S for s in summary.values())
    if "autoencoder" in comparisons:
        met["beats_autoencoder_on_psnr_accuracy_colourfulness_at_once"] = all(
            comparisons["autoencoder"][key]["verdict"] == "better" for key in ("psnr", "accuracy", "colorfulness_ratio"))
    met["at_least_3_seeds"] = seeds >= 3
    return met


def comparison_grid(models: dict[str, Path], shards: Path, count: int = 8):
    """gray | each model | truth, one row per fixed test photo."""
    from colorizer.data import dataset
    from colorizer.data import shards as shard_format
    from colorizer.evaluation import samples
    from colorizer.model.modelio import load_model

    meta = shard_format.read_meta(shards)
    fixed = samples.pick(dataset.evaluation(shards, "test", 64, with_info=True).as_numpy_iterator(),
                         meta["classes"], count)
    return samples.grid(fixed, {name: fixed.predict(load_model(path)) for name, path in models.items()})


def print_summary(report: dict) -> None:
    for model, stats in report["summary"].items():
        print(f"{model:15} " + ", ".join(f"{k} {stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" for k in
                                         ("psnr_gain_db", "accuracy", "auc", "colorfulness_ratio", "training_seconds")))
    for other, rows in report.get("default_vs", {}).items():
        for key, row in rows.items():
            print(f"{DEFAULT} - {other} {key}: {row['difference']:+.4f} (spread {row['spread']:.4f}): {row['verdict']}")
    if "goals" in report:
        print(json.dumps(report["goals"], indent=2))


LABELS = {"autoencoder": "autoencoder", "hybrid_scratch": "hybrid, CNN from scratch", "hybrid": "**hybrid, pretrained encoder (default)**"}


def markdown(report: dict) -> str:
    """The report as the markdown tables README and docs/results.md show: test summary, per class,
    and the default's validation trade-off between accuracy and colour."""
    models = [m for m in MODELS if m in report["summary"]]
    runs = {m: list(report["runs"][m]["seeds"].values()) for m in models}

    def cell(model, key, scale=1.0, digits=2):
        s = report["summary"][model][key]
        return f"{scale * s['mean']:.{digits}f} ± {scale * s['std']:.{digits}f}"

    gray = runs[models[0]][0]["gray"]
    lines = ["| model | epochs | PSNR gain over gray (dB) | accuracy@10 (%) | AuC | colourfulness | prior correction (per seed) | training s (per seed) |",
             "|---|---|---|---|---|---|---|---|",
             f"| gray (ab = 0) | | 0 ({gray['psnr']:.2f} dB) | {100 * gray['accuracy']:.2f} | {gray['auc']:.4f} | 0 | | |"]
    for m in models:
        lines.append(f"| {LABELS.get(m, m)} | {runs[m][0]['epochs']} | {cell(m, 'psnr_gain_db')} | {cell(m, 'accuracy', 100)} | "
                     f"{cell(m, 'auc', 1, 4)} | {cell(m, 'colorfulness_ratio', 1, 3)} | "
                     f"{', '.join(str(r['prior_correction']) for r in runs[m])} | "
                     f"{', '.join(str(round(r['training_seconds'])) for r in runs[m])} |")
    mean = statistics.mean
    classes = list(runs[models[0]][0]["per_class"])
    lines += ["", "| class | PSNR gain (dB): " + " / ".join(models) + " | accuracy@10 (%): " + " / ".join(models)
              + " / gray | colourfulness: " + " / ".join(models) + " |", "|---|---|---|---|"]
    for name in classes:
        per = {m: [r["per_class"][name] for r in runs[m]] for m in models}
        gain = " / ".join(f"{mean(c['psnr'] - c['gray_psnr'] for c in per[m]):+.2f}" for m in models)
        acc = " / ".join(f"{100 * mean(c['accuracy'] for c in per[m]):.1f}" for m in models)
        colour = " / ".join(f"{mean(c['colorfulness_ratio'] for c in per[m]):.2f}" for m in models)
        lines.append(f"| {name} | {gain} | {acc} / {100 * per[models[0]][0]['gray_accuracy']:.1f} | {colour} |")
    if DEFAULT in models:
        frontiers = [r["val_frontier"] for r in runs[DEFAULT]]
        steps = [row["prior_correction"] for row in frontiers[0]]
        lines += ["", "| `model.prior_correction` (default, validation, mean of seeds) | " + " | ".join(map(str, steps)) + " |",
                  "|---" * (len(steps) + 1) + "|"]
        for key, label, fmt in (("psnr_gain_db", "PSNR gain (dB)", "{:+.2f}"), ("accuracy", "accuracy@10 (%)", "{:.1f}"),
                                ("colorfulness_ratio", "colourfulness", "{:.2f}")):
            scale = 100 if key == "accuracy" else 1
            values = [fmt.format(scale * mean(f[i][key] for f in frontiers)) for i in range(len(steps))]
            lines.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    os.chdir(REPO)  # params.yaml's paths are relative to the repository root
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--out", type=Path, default=OUT_JSON, help="report (runs of the same recipe continue)")
    parser.add_argument("--table", action="store_true", help="only print the report's markdown tables (no training)")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(args.out.read_text())))
        return
    models, out_json = [m for m in MODELS if m in args.models], args.out.resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)  # before the first model trains, not after
    runs_dir = WORK / out_json.stem  # one folder of models per report
    data_folder = photo_folder(args.data)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{WORK / 'mlflow.db'}")
    WORK.mkdir(parents=True, exist_ok=True)
    seeds = [FIRST_SEED + k for k in range(args.seeds)]
    run_params = {(m, s): params_for(data_folder, args.image_size, m, s, runs_dir) for s in seeds for m in models}
    data = prepare(run_params[models[0], seeds[0]])
    earlier = json.loads(out_json.read_text()) if out_json.exists() else {}
    report = {"runs": earlier.get("runs", {}), "data": str(data_folder), "image_size": args.image_size,
              "matmul_gflops": [round(matmul_gflops(), 1)]}  # this invocation's; each run keeps its own
    for model in models:
        recipe = model_recipe(run_params[model, seeds[0]])
        if report["runs"].get(model, {}).get("recipe") != recipe:
            report["runs"][model] = {"recipe": recipe, "seeds": {}}  # another recipe: its runs start afresh
    for seed in seeds:  # seeds outermost: the models alternate, so a busier spell hits all alike
        for model in models:
            done = report["runs"][model]["seeds"]
            if str(seed) in done:
                continue
            run = one_run(run_params[model, seed], data)
            done[str(seed)] = run
            print(f"{model:15} seed {seed}: psnr +{run['psnr_gain_db']:.2f} dB, accuracy {run['accuracy']:.4f}, "
                  f"colourfulness {run['colorfulness_ratio']:.3f}, prior_correction {run['prior_correction']}, "
                  f"{run['training_seconds']:.0f} s", flush=True)
            out_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report["matmul_gflops"].append(round(matmul_gflops(), 1))
    report["machine"] = machine()
    complete = [m for m in MODELS if all(str(s) in report["runs"].get(m, {}).get("seeds", {}) for s in seeds)]
    report["summary"] = {m: spread([report["runs"][m]["seeds"][str(s)] for s in seeds]) for m in complete}
    if DEFAULT in complete:
        report["default_vs"] = {m: compare(report["summary"][DEFAULT], report["summary"][m]) for m in complete if m != DEFAULT}
        report["goals"] = goals(report["summary"], report["default_vs"], len(seeds))
    out_json.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    print_summary(report)
    # Every model in the report whose last-seed file is here, also those this invocation did not
    # train (a report resumed on another machine may lack some).
    paths = {m: Path(params_for(data_folder, args.image_size, m, seeds[-1], runs_dir).paths.model) for m in complete}
    present = {m: path for m, path in paths.items() if path.exists()}
    if present:
        grid = OUT_GRID if out_json == OUT_JSON else out_json.with_name(f"{out_json.stem}_grid.jpg")
        comparison_grid(present, data / "shards").save(grid, quality=88)  # photos: a JPEG a tenth of the PNG
        missing = sorted(set(paths) - set(present))
        print(f"wrote {grid} (seed {seeds[-1]}" + (f"; no model file for {', '.join(missing)})" if missing else ")"))
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
