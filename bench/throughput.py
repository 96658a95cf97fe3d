"""Images per second: the tf.data input pipeline against the model, and each model's speed.

1. The input pipeline (shards -> decoded, augmented, batched tensors) alone, against
   the train step and the inference step of the hybrid at the same batch and image
   size. Goal: the pipeline delivers >= 10x what a CPU train step consumes, so an
   accelerator (tens of times faster) would still not wait for it.
2. Training and inference images/s of the hybrid and the autoencoder at 128 and 224.

    python bench/throughput.py [--data DIR] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, photo_folder, save_results, write_params

WARMUP_STEPS, TIMED_STEPS = 3, 12


def prepare_shards(data: Path, work: Path, image_size: int):
    from colorizer.core.config import load_params
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    write_params(work, {"data": {"source": str(data), "image_size": image_size}})
    params = load_params(work / "params.yaml")
    download(params, out=work / "raw", root=work)
    resize(params.data, raw=work / "raw", out=work / "resized", report_path=work / "report.json")
    shard(resized=work / "resized", out=work / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    return params


def input_pipeline_rate(shards: Path, params, batch_size: int) -> float:
    from colorizer.data import dataset

    config = params.train
    batches = iter(dataset.training(shards, batch_size, config.shuffle_buffer, config.flip, params.train.seed))
    for _ in range(WARMUP_STEPS * 4):
        next(batches)
    steps = TIMED_STEPS * 8
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch_size / (time.perf_counter() - started)


def model_rates(params, arch: str, image_size: int, batch_size: int) -> dict:
    """Train-step and inference images/s of one architecture, on in-memory batches."""
    import keras
    import tensorflow as tf

    from colorizer.model import losses
    from colorizer.model.network import build_model, inference_model
    from colorizer.training.train import _train_step

    model = build_model(dataclasses.replace(params.model, arch=arch), image_size)
    optimizer = keras.optimizers.Adam(params.lr)
    optimizer.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    step = _train_step(strategy, model, optimizer, losses.make_loss("mse"), params, 1)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch_size, image_size, image_size, 1)), tf.float32)
    y = tf.constant(rng.uniform(-0.3, 0.3, (batch_size, image_size, image_size, 2)), tf.float32)
    batches = iter(itertools.repeat((x, y)))
    infer = tf.function(lambda x: inference_model(model)(x, training=False))
    return {
        "train_images_per_s": _rate(lambda: step(batches), batch_size),
        "inference_images_per_s": _rate(lambda: infer(x), batch_size),
        "parameters": int(model.count_params()),
    }


def _rate(call, batch_size: int) -> float:
    for _ in range(WARMUP_STEPS):
        np.asarray(call())
    started = time.perf_counter()
    for _ in range(TIMED_STEPS):
        np.asarray(call())
    return TIMED_STEPS * batch_size / (time.perf_counter() - started)


def run(data: Path, batch_size: int) -> dict:
    result = {"machine": machine(), "batch_size": batch_size, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        params = prepare_shards(data, work, 224)
        pipeline = input_pipeline_rate(work / "shards", params, batch_size)
        for arch, size in itertools.product(("hybrid", "autoencoder"), (128, 224)):
            result["models"][f"{arch}@{size}"] = model_rates(params, arch, size, batch_size)
    hybrid = result["models"]["hybrid@224"]
    result["input_pipeline"] = {
        "image_size": 224,
        "images_per_s": pipeline,
        "over_train_step": pipeline / hybrid["train_images_per_s"],
        "over_inference": pipeline / hybrid["inference_images_per_s"],
    }
    result["input_pipeline"]["goal_10x_train_step_met"] = result["input_pipeline"]["over_train_step"] >= 10
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    result = run(photo_folder(args.data), args.batch_size)
    save_results("throughput", result)
    print(f"input pipeline: {result['input_pipeline']['images_per_s']:.0f} images/s "
          f"= {result['input_pipeline']['over_train_step']:.1f}x the hybrid's train step at 224")
    for name, rates in result["models"].items():
        print(f"{name:18} train {rates['train_images_per_s']:7.1f}  inference {rates['inference_images_per_s']:7.1f} images/s")


if __name__ == "__main__":
    main()
