"""`make bench-quality`: colour quality on real photos, hybrid vs autoencoder vs gray, over seeds.

Trains the hybrid and the plain autoencoder with the repository's params.yaml (only the
data, the image size, the epochs, the arch and `train.seed` changed) on a Kaggle-layout
folder, once per training seed. Everything chosen is chosen on the validation split: the
decode-time prior correction by `model.prior_correction: auto` inside `train`, whose
validation frontier is recorded here. Each model is then scored on the test split once,
by the pipeline's own `evaluate`.

Writes bench/quality.json (per model and seed every metric, per class, training seconds,
the validation frontier; per model the mean, standard deviation, min and max over seeds;
the hybrid-vs-autoencoder comparison, where a difference within the seed spread is a tie;
the goals) and bench/quality_grid.png (gray | autoencoder | hybrid | truth on 8 fixed test
photos, the first seed's models). Runs already in quality.json for the same recipe are
kept, so an interrupted bench continues where it stopped.

Goals (issue 13), on the held-out test split at 128 x 128, at most 20 minutes of training
per model on a 2-core CPU (the report records the machine's float32 matmul GFLOP/s):
  PSNR >= gray + 2.0 dB; accuracy (within 10 ab) >= 62%; colourfulness >= 75% of the
  photos' own; and the hybrid beats the autoencoder by more than the seed spread.

    python bench/quality.py [--data DIR] [--image-size 128] [--epochs N] [--seeds 3] [--set key=value ...]
                            [--archs autoencoder hybrid] [--out bench/quality.json]

Another network on the same recipe, as `make bench` compares the compute cut (the default)
with issue 11's network (each report's models go to bench/work/quality/<report name>/):

    python bench/quality.py --set model.width=24 --set model.decoder=concat --epochs 24 --out bench/quality_issue11.json

The comparison, the goals and the grid need both archs; with one (`--archs`), only the
summaries of the archs with every seed are written.
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

# 1.25x the 24 epochs that issue 11's wider network trained for: the compute cut's recipe (half the
# training compute, the same colour on validation; 10-13 s per epoch at 128 px, TF matmul ~465 GFLOP/s).
EPOCHS = 30
ARCHS = ("autoencoder", "hybrid")
FIRST_SEED = 42  # params.yaml's train.seed; further seeds count up from it
METRICS = ("psnr", "psnr_gain_db", "accuracy", "auc", "colorfulness_ratio", "bias_a", "bias_b", "mse")
GOALS = {"psnr_gain_db": 2.0, "accuracy": 0.62, "colorfulness_ratio": 0.75}  # on the hybrid's mean over seeds
TRAINING_BUDGET_S = 20 * 60
WORK = REPO / "bench" / "work" / "quality"
OUT_JSON = REPO / "bench" / "quality.json"
OUT_GRID = REPO / "bench" / "quality_grid.png"


def params_for(data: Path, image_size: int, epochs: int, arch: str, seed: int, overrides: list[str],
               runs: Path = WORK):
    """`runs`: the folder of this report's models (one per report, so two reports never share one)."""
    from colorizer.core.config import params_from_dict

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source=str(data), image_size=image_size)
    raw["train"].update(epochs=epochs, sample_every=max(1, epochs // 4), seed=seed, resume=False)
    raw["model"]["arch"] = arch
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.rpartition(".")
        (raw[section] if section else raw)[name] = yaml.safe_load(value)
    folder = (runs / f"{arch}-{seed}").relative_to(REPO)  # stage paths are relative to the repository (main() runs there)
    raw["paths"] = {key: str(folder / value) for key, value in raw["paths"].items()}
    return params_from_dict(raw)


def prepare(params) -> Path:
    """download -> resize -> shard once into bench/work/quality/data (shared by every model and seed)."""
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    data = WORK / "data"
    if (data / "shards" / "meta.json").exists() and (data / "recipe.json").exists() \
            and json.loads((data / "recipe.json").read_text()) == recipe_of(params):
        return data
    shutil.rmtree(data, ignore_errors=True)
    download(params, out=data / "raw", root=REPO)
    resize(params.data, raw=data / "raw", out=data / "resized", report_path=data / "data_report.json")
    shard(resized=data / "resized", out=data / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    (data / "recipe.json").write_text(json.dumps(recipe_of(params)))
    return data


PER_RUN_PARAMS = ("train.seed", "model.arch", "train.sample_every")  # what differs between a report's runs


def shared_params(params) -> dict:
    """Every param the runs share (not the paths, the seed or the arch): a change to params.yaml
    is another recipe, whose runs are not averaged with the earlier ones."""
    return shared(json.loads(json.dumps(params.flat(), default=str)))


def shared(flat: dict) -> dict:
    """A run's flat params less its paths and PER_RUN_PARAMS."""
    return {key: value for key, value in flat.items() if not key.startswith("paths.") and key not in PER_RUN_PARAMS}


def recipe_of(params) -> dict:
    """What the shared shards depend on."""
    return {"source": params.data.source, "image_size": params.data.image_size, "seed": params.data.seed,
            "max_per_class": params.data.max_per_class}


def one_run(params, data: Path) -> dict:
    """Train (choosing the prior correction on validation), then the pipeline's evaluate: test, once."""
    from colorizer.evaluation.evaluate import evaluate
    from colorizer.training.train import train

    started = time.perf_counter()
    summary = train(params, shards=data / "shards", root=WORK)
    seconds = time.perf_counter() - started
    result = evaluate(params, shards=data / "shards", root=WORK)
    scores = {key: float(result[key]) for key in METRICS if key in result}
    scores["psnr_gain_db"] = float(result["psnr"] - result["baseline"]["psnr"])
    return {**scores, "training_seconds": round(seconds, 1), "epochs": summary["epochs"],
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


def compare(hybrid: dict, autoencoder: dict) -> dict:
    """Hybrid minus autoencoder per metric; a tie when the difference of means is within the
    larger of the two seed standard deviations (the seed-to-seed spread)."""
    out = {}
    for key in ("psnr", "accuracy", "auc", "colorfulness_ratio"):
        difference = hybrid[key]["mean"] - autoencoder[key]["mean"]
        noise = max(hybrid[key]["std"], autoencoder[key]["std"])
        out[key] = {"difference": difference, "spread": noise,
                    "verdict": "tie" if abs(difference) <= noise else ("hybrid" if difference > 0 else "autoencoder")}
    return out


def goals(summary: dict, comparison: dict, seeds: int) -> dict:
    hybrid = summary["hybrid"]
    met = {f"{key}_at_least_{value}": hybrid[key]["mean"] >= value for key, value in GOALS.items()}
    met["all_three_at_once"] = all(met.values())
    met["within_20_minutes_per_model"] = all(s["training_seconds"]["max"] <= TRAINING_BUDGET_S for s in summary.values())
    met["hybrid_beats_autoencoder_beyond_spread"] = all(
        comparison[key]["verdict"] == "hybrid" for key in ("psnr", "accuracy"))
    met["at_least_3_seeds"] = seeds >= 3
    return met


def comparison_grid(models: dict[str, Path], shards: Path, count: int = 8):
    """gray | autoencoder | hybrid | truth, one row per fixed test photo."""
    from colorizer.data import dataset
    from colorizer.data import shards as shard_format
    from colorizer.evaluation import samples
    from colorizer.model.modelio import load_model

    meta = shard_format.read_meta(shards)
    fixed = samples.pick(dataset.evaluation(shards, "test", 64, with_info=True).as_numpy_iterator(),
                         meta["classes"], count)
    return samples.grid(fixed, {name: fixed.predict(load_model(path)) for name, path in models.items()})


def print_summary(report: dict) -> None:
    for arch, stats in report["summary"].items():
        print(f"{arch:12} " + ", ".join(f"{k} {stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" for k in
                                        ("psnr_gain_db", "accuracy", "auc", "colorfulness_ratio", "training_seconds")))
    for key, row in report.get("hybrid_vs_autoencoder", {}).items():
        print(f"hybrid - autoencoder {key}: {row['difference']:+.4f} (spread {row['spread']:.4f}): {row['verdict']}")
    if "goals" in report:
        print(json.dumps(report["goals"], indent=2))


def main() -> None:
    os.chdir(REPO)  # params.yaml's paths are relative to the repository root
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param for both models, e.g. --set train.loss=mse")
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=list(ARCHS))
    parser.add_argument("--out", type=Path, default=OUT_JSON, help="report (runs of the same recipe continue)")
    args = parser.parse_args()
    archs, out_json = tuple(a for a in ARCHS if a in args.archs), args.out.resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)  # before the first model trains, not after
    runs_dir = WORK / out_json.stem  # one folder of models per report, so a report's grid is drawn from its own
    data_folder = photo_folder(args.data)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{WORK / 'mlflow.db'}")
    WORK.mkdir(parents=True, exist_ok=True)
    seeds = [FIRST_SEED + k for k in range(args.seeds)]
    run_params = {(arch, seed): params_for(data_folder, args.image_size, args.epochs, arch, seed, args.set, runs_dir)
                  for seed in seeds for arch in archs}
    data = prepare(run_params[archs[0], seeds[0]])
    recipe = {"data": str(data_folder), "image_size": args.image_size, "epochs": args.epochs, "overrides": args.set,
              "params": shared_params(run_params[archs[0], seeds[0]])}
    report = json.loads(out_json.read_text()) if out_json.exists() else {}
    if report.get("recipe") != recipe:
        report = {"recipe": recipe, "runs": {}}  # another recipe: start afresh
    for arch in archs:
        report["runs"].setdefault(arch, {})
    report.setdefault("matmul_gflops", []).append(round(matmul_gflops(), 1))
    for seed in seeds:  # seeds outermost: the models alternate, so a busier spell hits both alike
        for arch in archs:
            if str(seed) in report["runs"][arch]:
                continue
            run = one_run(run_params[arch, seed], data)
            report["runs"][arch][str(seed)] = run
            print(f"{arch:12} seed {seed}: psnr +{run['psnr_gain_db']:.2f} dB, accuracy {run['accuracy']:.4f}, "
                  f"colourfulness {run['colorfulness_ratio']:.3f}, prior_correction {run['prior_correction']}, "
                  f"{run['training_seconds']:.0f} s", flush=True)
            out_json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    report["matmul_gflops"].append(round(matmul_gflops(), 1))
    report["machine"] = machine()
    report["params"] = run_params[archs[-1], seeds[0]].flat()
    complete = [arch for arch in ARCHS if all(str(s) in report["runs"].get(arch, {}) for s in seeds)]
    report["summary"] = {arch: spread([report["runs"][arch][str(s)] for s in seeds]) for arch in complete}
    for key in ("hybrid_vs_autoencoder", "goals"):
        report.pop(key, None)  # an earlier run's, over other seeds or archs
    if len(complete) == len(ARCHS):
        report["hybrid_vs_autoencoder"] = compare(report["summary"]["hybrid"], report["summary"]["autoencoder"])
        report["goals"] = goals(report["summary"], report["hybrid_vs_autoencoder"], len(seeds))
    out_json.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    print_summary(report)
    models = {arch: Path(run_params[arch, seeds[0]].paths.model) for arch in archs}
    if archs == ARCHS and all(path.exists() for path in models.values()):  # runs from before --out had their own folder may not
        grid = OUT_GRID if out_json == OUT_JSON else out_json.with_name(f"{out_json.stem}_grid.png")
        comparison_grid(models, data / "shards").save(grid)
        print(f"wrote {grid}")
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
