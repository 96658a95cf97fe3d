"""Colour quality of network variants on the real photos' VALIDATION split, over several seeds.

Issue 11 asks for less compute at the same colour quality "within the seed-to-seed
spread": each variant is trained with --seeds different seeds (weights, shard order,
augmentation; the same photos) on a reduced but real recipe, and scored on the
validation split (never the test split: choices are made on validation). Every
param not named here is params.yaml's.

Recipe (default): 128 x 128 px, data.max_per_class 200 (1200 train photos, all 800
validation photos), 8 epochs, batch 16. (Until issue 11's second round: 64 x 64 px, kept in
quality_seeds_64px_8ep_200.json; at 64 px the 1/4-resolution stems see 16 x 16 cells.)

    python bench/quality_seeds.py [--data DIR] [--seeds 3] [--variants before,default] [--image-size 128]

Writes bench/quality_seeds.json (another recipe: quality_seeds_<size>px_<epochs>ep_<max per class>.json, so
runs of different recipes are never averaged together): per variant and seed the validation metrics
(accuracy within 10 ab, AuC, PSNR, colourfulness ratio, mse), training seconds and
the training FLOPs per image; per variant mean, standard deviation, min and max.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import time
from pathlib import Path

import yaml
from common import BASELINE_NETWORK, CUT_NETWORK, REPO, machine, photo_folder

WORK = REPO / "bench" / "work" / "quality_seeds"
OUT_JSON = REPO / "bench" / "quality_seeds.json"
CUT = {f"model.{key}": value for key, value in CUT_NETWORK.items()}  # the compute cut, params.yaml's network
VARIANTS = {  # overrides of params.yaml ("section.key": value); networks pin every model.* they were measured with
    "before": {f"model.{key}": value for key, value in BASELINE_NETWORK.items()},  # the network issue 11 measured
    "default": {},  # params.yaml as it stands (the report's default_variant names the row measured as it)
    "s2d_standard_w14": {"model.stem": "space_to_depth", "model.convs": "standard", "model.width": 14, "model.decoder": "concat"},
    "s2d_separable_w24": {"model.stem": "space_to_depth", "model.convs": "separable", "model.width": 24, "model.decoder": "concat"},
    "s2d_standard_w16": {"model.stem": "space_to_depth", "model.convs": "standard", "model.width": 16, "model.decoder": "concat"},
    "strided_standard_w15": {"model.stem": "strided", "model.convs": "standard", "model.width": 15, "model.decoder": "concat"},
    "conv_standard_w14": {"model.stem": "conv", "model.convs": "standard", "model.width": 14, "model.decoder": "concat"},
    "strided_separable_w24": {"model.stem": "strided", "model.convs": "separable", "model.width": 24, "model.decoder": "concat"},
    "strided_separable_w32": {"model.stem": "strided", "model.convs": "separable", "model.width": 32, "model.decoder": "concat"},
    "strided_standard_w16": {"model.stem": "strided", "model.convs": "standard", "model.width": 16, "model.decoder": "concat"},
    # The patchify stem (1 x 1 conv on the 4 x 4 blocks) at width 16, trained for as many epochs
    # and for 1.25x as many (its training FLOPs are 0.39x issue 11's network's: 0.49x the compute in all).
    "patchify_w16": {"model.stem": "space_to_depth", "model.convs": "standard", "model.width": 16, "model.decoder": "concat"},
    "patchify_w16_x1.25": {"model.stem": "space_to_depth", "model.convs": "standard", "model.width": 16,
                           "train.epochs": "x1.25", "model.decoder": "concat"},
    # Width 16 with the lowres decoder (the decoder's coarse-half conv before upsampling): 0.39x too.
    "lowres_w16": CUT,
    # Issue 11's sixth round: the cut at width 8 (0.29x its training FLOPs, 1.6x its images/s on 2 CPUs),
    # also with 1.25x the epochs.
    "lowres_w8": {**CUT, "model.width": 8},
    "lowres_w8_x1.25": {**CUT, "model.width": 8, "train.epochs": "x1.25"},
    # The cut predicting colour at 1/8 resolution (the bin head and its loss on a quarter of the pixels).
    "lowres_w16_os8": {**CUT, "model.output_stride": 8},
    # Issue 13: the hybrid's auxiliary scene loss at three weights, against no scene loss and the autoencoder.
    "hybrid_scene0": {"model.arch": "hybrid", "train.scene_weight": 0.0},
    "hybrid_scene0.1": {"model.arch": "hybrid", "train.scene_weight": 0.1},
    "hybrid_scene0.3": {"model.arch": "hybrid", "train.scene_weight": 0.3},
    "hybrid_scene1": {"model.arch": "hybrid", "train.scene_weight": 1.0},
    "autoencoder": {"model.arch": "autoencoder", "train.scene_weight": 0.0},
    # The loss and rebalancing, re-chosen on validation (they had been picked on test photos).
    "loss_mse": {"train.loss": "mse"},
    "rebalance0.5": {"train.rebalance": 0.5},
}
KEYS = ("accuracy", "auc", "psnr", "psnr_gain_db", "colorfulness_ratio", "mse")
DEFAULT_RECIPE = {"image_size": 128, "epochs": 8, "max_per_class": 200}  # its report is OUT_JSON


def params_for(data: Path, image_size: int, epochs: int, max_per_class: int, variant: str, seed: int):
    from colorizer.core.config import params_from_dict

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source=str(data), image_size=image_size, max_per_class=max_per_class)
    raw["train"].update(epochs=epochs, sample_every=epochs, resume=False)
    for key, value in VARIANTS[variant].items():
        section, name = key.split(".")
        raw[section][name] = value
    raw["train"]["epochs"] = epochs_of(raw["train"]["epochs"], epochs, variant)
    raw["train"]["seed"] = seed
    folder = (WORK / f"{variant}-{seed}").relative_to(REPO)  # stage paths are relative to the repository (main() runs there)
    raw["paths"] = {key: str(folder / value) for key, value in raw["paths"].items()}
    return params_from_dict(raw)


def epochs_of(value, recipe_epochs: int, variant: str) -> int:
    """A variant's `train.epochs`: a number, or "x<multiple>" of the recipe's epochs ("x1.25")."""
    if not isinstance(value, str):
        return value
    multiple = re.fullmatch(r"x(\d+(?:\.\d+)?)", value)
    if not multiple:
        raise ValueError(f"variant {variant}: train.epochs {value!r} must be a number or 'x<multiple>', e.g. 'x1.25'")
    return max(1, math.ceil(recipe_epochs * float(multiple.group(1)) - 1e-9))


def prepare(params) -> Path:
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    data = WORK / f"data-{params.data.image_size}px-{params.data.max_per_class}"
    if (data / "shards" / "meta.json").exists():
        return data
    shutil.rmtree(data, ignore_errors=True)
    download(params, out=data / "raw", root=REPO)
    resize(params.data, raw=data / "raw", out=data / "resized", report_path=data / "data_report.json")
    shard(resized=data / "resized", out=data / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    return data


def report_path(image_size: int, epochs: int, max_per_class: int) -> Path:
    """The default recipe's report, or one of its own for another recipe."""
    if (image_size, epochs, max_per_class) == tuple(DEFAULT_RECIPE.values()):
        return OUT_JSON
    return OUT_JSON.with_name(f"quality_seeds_{image_size}px_{epochs}ep_{max_per_class}.json")


def score_validation(model, shards: Path, threshold: float) -> dict:
    from colorizer.evaluation.evaluate import score_split

    summary = score_split(model, shards, "val", threshold, 50)
    summary["psnr_gain_db"] = summary["psnr"] - summary["baseline"]["psnr"]
    return summary


def one_run(params, data: Path) -> dict:
    from colorizer.model.flops import analytic_flops
    from colorizer.model.modelio import load_model
    from colorizer.training.train import train

    started = time.perf_counter()
    summary = train(params, shards=data / "shards", root=WORK)
    seconds = time.perf_counter() - started
    model = load_model(Path(params.paths.model))
    scores = score_validation(model, data / "shards", params.metrics.threshold)
    shutil.rmtree(Path(params.paths.model).parents[1], ignore_errors=True)
    return {**{k: float(scores[k]) for k in KEYS}, "training_seconds": round(seconds, 1),
            "train_images_per_s": summary["train_images_per_second"], "parameters": summary["parameters"],
            "forward_flops_per_image": analytic_flops(model)["forward"]}


def main() -> None:
    os.chdir(REPO)  # params.yaml's paths are relative to the repository root
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default="before,default")
    parser.add_argument("--image-size", type=int, default=DEFAULT_RECIPE["image_size"])
    parser.add_argument("--epochs", type=int, default=DEFAULT_RECIPE["epochs"])
    parser.add_argument("--max-per-class", type=int, default=DEFAULT_RECIPE["max_per_class"])
    parser.add_argument("--again", action="store_true", help="re-run variants and seeds already in the report")
    args = parser.parse_args()
    folder = photo_folder(args.data)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{WORK / 'mlflow.db'}")
    WORK.mkdir(parents=True, exist_ok=True)
    variants = args.variants.split(",")
    out = report_path(args.image_size, args.epochs, args.max_per_class)
    report = json.loads(out.read_text()) if out.exists() else {}
    report.update({"machine": machine(), "data": str(folder), "split": "val", "image_size": args.image_size,
                   "epochs": args.epochs, "max_per_class": args.max_per_class})
    report.setdefault("variants", {})
    seeds = [42 + k for k in range(args.seeds)]
    data = prepare(params_for(folder, args.image_size, args.epochs, args.max_per_class, variants[0], seeds[0]))
    for seed in seeds:  # seeds outermost: variants alternate, so a busier spell hits them alike
        for variant in variants:
            if str(seed) in report["variants"].get(variant, {}).get("runs", {}) and not args.again:
                continue  # measured before (--again re-measures)
            run = one_run(params_for(folder, args.image_size, args.epochs, args.max_per_class, variant, seed), data)
            entry = report["variants"].setdefault(variant, {"overrides": VARIANTS[variant], "runs": {}})
            entry["runs"][str(seed)] = run
            print(f"{variant:20} seed {seed}: " + ", ".join(f"{k} {run[k]:.4f}" for k in KEYS)
                  + f", {run['training_seconds']:.0f} s", flush=True)
            out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for variant, entry in report["variants"].items():
        runs = list(entry["runs"].values())
        entry["summary"] = {k: {"mean": statistics.mean(r[k] for r in runs),
                                "std": statistics.stdev(r[k] for r in runs) if len(runs) > 1 else 0.0,
                                "min": min(r[k] for r in runs), "max": max(r[k] for r in runs)} for k in KEYS}
        print(f"{variant:20} " + ", ".join(f"{k} {s['mean']:.4f} ± {s['std']:.4f}" for k, s in entry["summary"].items()))
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
