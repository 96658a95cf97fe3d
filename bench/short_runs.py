"""Short runs against gray (issue 13, item 5): the classification head's starting bias, measured.

A briefly trained classification model used to lose to plain gray: its head starts
near-uniform over the sRGB ab bins (not symmetric about gray), whose annealed mean
is a strong pink cast. Two remedies are compared on the real photos' VALIDATION
split (never test), each with --seeds training seeds, on two recipes:

    quick     64 px, data.max_per_class 60, 3 epochs (the setting that lost to gray)
    default   64 px, data.max_per_class 200, 8 epochs (quality_seeds.py's recipe)

Variants (trained): `zero_bias` (model.prior_init: false, the former head) and
`prior_init` (the head's bias starts at log(training prior)). Decodings (of each
trained model, no retraining): `annealed` (the model's own) and `entropy_shrink`: the
annealed mean pulled towards the prior's mean by the distribution's normalised
entropy H / log Q (candidate (b): fall back to the safe colour while unsure).

    python bench/short_runs.py [--data DIR] [--seeds 2] [--recipes quick,default]

Writes bench/short_runs.json: per recipe, variant, decoding and seed the validation
accuracy (within 10 ab), PSNR and the gray baseline's; means over seeds.
Every param not named here is params.yaml's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
from pathlib import Path

import numpy as np
import yaml
from common import REPO, machine, photo_folder

WORK = REPO / "bench" / "work" / "short_runs"
OUT_JSON = REPO / "bench" / "short_runs.json"
RECIPES = {"quick": {"image_size": 64, "max_per_class": 60, "epochs": 3},
           "default": {"image_size": 64, "max_per_class": 200, "epochs": 8}}
VARIANTS = {"zero_bias": {"prior_init": False}, "prior_init": {"prior_init": True}}
KEYS = ("accuracy", "psnr", "gray_accuracy", "gray_psnr")


def params_for(data: Path, recipe: str, variant: str, seed: int):
    from colorizer.core.config import params_from_dict

    r = RECIPES[recipe]
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"].update(source=str(data), image_size=r["image_size"], max_per_class=r["max_per_class"])
    raw["train"].update(epochs=r["epochs"], sample_every=r["epochs"], resume=False, seed=seed)
    raw["model"].update(VARIANTS[variant])
    folder = (WORK / recipe / f"{variant}-{seed}").relative_to(REPO)  # stage paths are relative to the repo
    raw["paths"] = {key: str(folder / value) for key, value in raw["paths"].items()}
    return params_from_dict(raw)


def prepare(params, recipe: str) -> Path:
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    data = WORK / recipe / "data"
    if not (data / "shards" / "meta.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        download(params, out=data / "raw", root=REPO)
        resize(params.data, raw=data / "raw", out=data / "resized", report_path=data / "data_report.json")
        shard(resized=data / "resized", out=data / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    return data / "shards"


def entropy_shrink_model(model, shards: Path):
    """The saved model with candidate (b)'s decoding: annealed mean * (1 - h) + prior mean * h,
    h = the entropy of softmax(logits) over log Q (1 = uniform: know nothing, say the safe colour)."""
    import keras
    from keras import ops

    from colorizer.data import shards as shard_format
    from colorizer.data.lab import AB_SCALE
    from colorizer.model import losses

    bins = losses.ab_bins()
    prior = losses.colour_prior(shard_format.read_ab_histogram(shards), bins)
    safe = ops.convert_to_tensor((prior @ bins / AB_SCALE).astype(np.float32))
    logits = model.get_layer("ab_logits").output
    decoder = model.get_layer("ab_low") if "ab_low" in [layer.name for layer in model.layers] else model.get_layer("ab")
    annealed = decoder(logits)
    p = ops.softmax(logits, axis=-1)
    h = -ops.sum(p * ops.log(p + 1e-12), axis=-1, keepdims=True) / np.log(len(bins))
    ab = annealed * (1 - h) + safe * h
    if decoder.name == "ab_low":
        ab = model.get_layer("ab")(ab)
    return keras.Model(model.input, ab)


def score(model, shards: Path, threshold: float) -> dict:
    from colorizer.evaluation.evaluate import score_split

    s = score_split(model, shards, "val", threshold, 50)
    return {"accuracy": s["accuracy"], "psnr": s["psnr"], "gray_accuracy": s["baseline"]["accuracy"],
            "gray_psnr": s["baseline"]["psnr"]}


def one_run(params, shards: Path) -> dict:
    from colorizer.model.modelio import load_model
    from colorizer.training.train import train

    train(params, shards=shards, root=WORK)
    model = load_model(Path(params.paths.model))
    result = {"annealed": score(model, shards, params.metrics.threshold),
              "entropy_shrink": score(entropy_shrink_model(model, shards), shards, params.metrics.threshold)}
    shutil.rmtree(Path(params.paths.model).parents[1], ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--recipes", default="quick,default")
    parser.add_argument("--variants", default="zero_bias,prior_init")
    args = parser.parse_args()
    folder = photo_folder(args.data)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{WORK / 'mlflow.db'}")
    WORK.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    report = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    report.update({"machine": machine(), "data": str(folder), "split": "val", "recipes": RECIPES})
    results = report.setdefault("results", {})
    seeds = [42 + k for k in range(args.seeds)]
    for recipe in args.recipes.split(","):
        shards = prepare(params_for(folder, recipe, "zero_bias", seeds[0]), recipe)
        for seed in seeds:
            for variant in args.variants.split(","):
                run = one_run(params_for(folder, recipe, variant, seed), shards)
                for decoding, scores in run.items():
                    results.setdefault(recipe, {}).setdefault(variant, {}).setdefault(decoding, {})[str(seed)] = scores
                    print(f"{recipe:8} {variant:10} {decoding:15} seed {seed}: "
                          + ", ".join(f"{k} {scores[k]:.4f}" for k in KEYS), flush=True)
                OUT_JSON.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for recipe, variants in results.items():
        for variant, decodings in variants.items():
            for decoding, runs in decodings.items():
                mean = {k: statistics.mean(r[k] for r in runs.values()) for k in KEYS}
                print(f"{recipe:8} {variant:10} {decoding:15} mean of {len(runs)}: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    OUT_JSON.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
