"""Images/s, FLOPs and utilisation of what the pipeline trains, against the machine's own limit.

Every model row is params.yaml's configuration (model, loss, batch) unless its name
says otherwise; all rows are timed in one process, round-robin over several rounds
(median kept), so a machine shared with other work slows them alike.

- `matmul_gflops`: float32 matmul (2048 x 2048, TensorFlow, all cores) GFLOP/s: the
  machine's practical peak, measured in the same run.
- FLOPs per image of the forward pass and of a training step: TensorFlow's profiler on
  the traced graph, and the analytic count of colorizer.model.flops (checked against
  each other in tests/model/test_flops.py).
- utilisation (MFU) = training FLOPs per image x training images/s / matmul peak.
- `default@224`: the project's training step (training.train._train_step with the
  classification loss) on in-memory batches; `default@224 streaming`: the same step
  fed by the real tf.data pipeline from shards of the real photos (what `train` runs);
  `default@224 keras fit`: the seed's way, Keras `model.fit` on in-memory NumPy arrays,
  same model, loss, batch and metrics (ab_mse, ab_accuracy).
- labelled peers: the `from-scratch hybrid` (`model.backbone: none`, its global branch
  trained on the data instead of ImageNet-pretrained) at 224 and 128 px (goal: the
  default's training step at 128 px at most 1.5x its time), the same network with the
  `mse loss` (a 2-channel regression head), and the `autoencoder` (no global branch).
- the input pipeline alone, against the default train step (goal >= 10x).

    python bench/throughput.py [--data DIR] [--batch-size N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, matmul_gflops, photo_folder, save_results, write_params

WARMUP_STEPS, TIMED_STEPS = 2, 6
SCRATCH_224, SCRATCH_128 = "from-scratch hybrid@224", "from-scratch hybrid@128"


def prepare_shards(data: Path, work: Path, image_size: int, max_per_class: int | None = None):
    from colorizer.core.config import load_params
    from colorizer.prepare.download import download
    from colorizer.prepare.resize import resize
    from colorizer.prepare.shard import shard

    write_params(work, {"data": {"source": str(data), "image_size": image_size, "max_per_class": max_per_class}})
    params = load_params(work / "params.yaml")
    download(params, out=work / "raw", root=work)
    resize(params.data, raw=work / "raw", out=work / "resized", report_path=work / "report.json")
    shard(resized=work / "resized", out=work / "shards", num_shards=params.shard.num_shards, seed=params.data.seed)
    return params


def with_model(params, loss: str | None = None, image_size: int | None = None, **model_overrides):
    """params with some model / loss settings changed (a labelled variant)."""
    model = dataclasses.replace(params.model, **model_overrides)
    train = dataclasses.replace(params.train, loss=loss or params.train.loss)
    data = dataclasses.replace(params.data, image_size=image_size or params.data.image_size)
    return dataclasses.replace(params, model=model, train=train, data=data)


class StepTimer:
    """One model's train and inference steps, timed a few steps at a time (call `round` repeatedly)."""

    def __init__(self, params, shards: Path, batch_size: int, stream=None, fit: bool = False):
        import keras
        import tensorflow as tf

        from colorizer.data import shards as shard_format
        from colorizer.model.flops import analytic_flops, profiled_flops
        from colorizer.model.network import inference_model, model_and_loss
        from colorizer.training.train import _train_step

        keras.utils.set_random_seed(0)
        self.batch_size, self.fit = batch_size, fit
        # As train builds it from the shards: the colour prior, and the classes (a scene head if asked).
        self.model, loss = model_and_loss(params, params.data.image_size, shard_format.read_ab_histogram(shards),
                                          scene_classes=len(shard_format.read_meta(shards)["classes"]))
        size = params.data.image_size
        counted = analytic_flops(self.model)
        self.flops = {
            "forward_profiler": profiled_flops(inference_model(self.model)),
            "training_profiler": profiled_flops(self.model, loss=loss, training=True),
            "forward_analytic": counted["forward"],
            "training_analytic": counted["training"],
        }
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch_size, size, size, 1)).astype(np.float32)
        y = rng.uniform(-0.3, 0.3, (batch_size, size, size, 2)).astype(np.float32)
        if fit:
            from colorizer.evaluation.metrics import ab_accuracy, ab_mse

            reps = TIMED_STEPS
            self.arrays = (np.tile(x, (reps, 1, 1, 1)), np.tile(y, (reps, 1, 1, 1)))
            if params.train.loss == "classification":
                losses, metrics = [None, loss], [[ab_mse(), ab_accuracy(params.metrics.threshold)], []]
                self.targets = [self.arrays[1], self.arrays[1]]
                if len(self.model.outputs) == 3:  # the scene head (train.scene_weight > 0), as train weighs it
                    losses.append(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                    metrics.append([])
                    self.targets.append(np.zeros(len(self.arrays[0]), np.int64))
                weights = [0.0, 1.0, params.train.scene_weight][:len(losses)]
                self.model.compile(keras.optimizers.Adam(params.lr), losses, loss_weights=weights, metrics=metrics)
            else:
                self.model.compile(keras.optimizers.Adam(params.lr), loss,
                                   metrics=[ab_mse(), ab_accuracy(params.metrics.threshold)])
                self.targets = self.arrays[1]
            self.train = lambda: self.model.fit(self.arrays[0], self.targets, batch_size=batch_size, epochs=1,
                                                verbose=0, shuffle=False)
            self.steps_per_call = reps
        else:
            optimizer = keras.optimizers.Adam(params.lr)
            optimizer.build(self.model.trainable_variables)
            step = _train_step(tf.distribute.get_strategy(), self.model, optimizer, loss, params, 1)
            labels = tf.zeros([batch_size], tf.int64)  # scene labels, for a model with the scene head
            batches = stream if stream is not None else iter(itertools.repeat((tf.constant(x), tf.constant(y), labels)))
            self.train = lambda: np.asarray(step(batches))
            self.steps_per_call = 1
        infer_model = inference_model(self.model)
        infer = tf.function(lambda x: infer_model(x, training=False))
        self.infer = lambda: np.asarray(infer(tf.constant(x)))
        self.train_rates, self.infer_rates = [], []
        for _ in range(WARMUP_STEPS):
            self.train()
            self.infer()

    def round(self, infer: bool = True) -> None:
        calls = max(1, TIMED_STEPS // self.steps_per_call)
        started = time.perf_counter()
        for _ in range(calls):
            self.train()
        self.train_rates.append(calls * self.steps_per_call * self.batch_size / (time.perf_counter() - started))
        if infer:
            started = time.perf_counter()
            for _ in range(TIMED_STEPS):
                self.infer()
            self.infer_rates.append(TIMED_STEPS * self.batch_size / (time.perf_counter() - started))

    def result(self, peak_gflops: float) -> dict:
        train = statistics.median(self.train_rates)
        out = {
            "train_images_per_s": train,
            "train_images_per_s_rounds": [round(r, 2) for r in self.train_rates],
            "parameters": int(self.model.count_params()),
            "flops": {k: int(v) for k, v in self.flops.items()},
            "utilisation": self.flops["training_profiler"] * train / (peak_gflops * 1e9),
        }
        if self.infer_rates:
            out["inference_images_per_s"] = statistics.median(self.infer_rates)
        return out


def input_pipeline_rate(shards: Path, params, batch_size: int) -> float:
    from colorizer.data import dataset

    config = params.train
    batches = iter(dataset.training(shards, batch_size, config.shuffle_buffer, config.flip, params.train.seed,
                                    labels=True))
    for _ in range(WARMUP_STEPS * 4):
        next(batches)
    steps = 96
    started = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * batch_size / (time.perf_counter() - started)


def run(data: Path, batch_size: int | None = None, rounds: int = 3) -> dict:
    """`batch_size`: params.yaml's `train.batch_size` unless given."""
    import tensorflow as tf

    from colorizer.data import dataset

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        params = prepare_shards(data, work, 224)
        batch_size = batch_size or params.train.batch_size
        params = dataclasses.replace(params, train=dataclasses.replace(params.train, batch_size=batch_size))
        result = {"machine": machine(), "batch_size": batch_size, "rounds": rounds, "models": {}}
        shards = work / "shards"
        result["matmul_gflops_before"] = matmul_gflops()
        stream = iter(dataset.training(shards, batch_size, params.train.shuffle_buffer,
                                       params.train.flip, params.train.seed, labels=True))
        timers = {
            "default@224": StepTimer(params, shards, batch_size),
            "default@224 streaming": StepTimer(params, shards, batch_size, stream=stream),
            "default@224 keras fit": StepTimer(params, shards, batch_size, fit=True),
            "default@128": StepTimer(with_model(params, image_size=128), shards, batch_size),
            SCRATCH_224: StepTimer(with_model(params, backbone="none"), shards, batch_size),
            SCRATCH_128: StepTimer(with_model(params, image_size=128, backbone="none"), shards, batch_size),
            "mse loss@224": StepTimer(with_model(params, loss="mse"), shards, batch_size),
            "autoencoder@224": StepTimer(with_model(params, arch="autoencoder", backbone="none"), shards, batch_size),
        }
        for _ in range(rounds):
            for name, timer in timers.items():
                timer.round(infer="streaming" not in name and "fit" not in name)
        result["matmul_gflops_after"] = matmul_gflops()
        peak = max(result["matmul_gflops_before"], result["matmul_gflops_after"])
        result["matmul_gflops"] = peak
        result["models"] = {name: timer.result(peak) for name, timer in timers.items()}
        tf.keras.backend.clear_session() if hasattr(tf, "keras") else None
        pipeline = input_pipeline_rate(shards, params, batch_size)
    models = result["models"]
    default = models["default@224"]
    result["input_pipeline"] = {
        "image_size": 224,
        "images_per_s": pipeline,
        "over_train_step": pipeline / default["train_images_per_s"],
        "over_inference": pipeline / default["inference_images_per_s"],
    }
    result["input_pipeline"]["goal_10x_train_step_met"] = result["input_pipeline"]["over_train_step"] >= 10
    streaming_over_fit = models["default@224 streaming"]["train_images_per_s"] / models["default@224 keras fit"]["train_images_per_s"]
    step_time_128 = models[SCRATCH_128]["train_images_per_s"] / models["default@128"]["train_images_per_s"]
    result["comparison"] = {
        "streaming_loop_over_keras_fit": streaming_over_fit,
        "default_over_mse_loss_rate": default["train_images_per_s"] / models["mse loss@224"]["train_images_per_s"],
        "default_over_scratch_step_time_128": step_time_128,
        "default_over_scratch_step_time_224": models[SCRATCH_224]["train_images_per_s"] / default["train_images_per_s"],
        "default_over_scratch_training_flops_128": (models["default@128"]["flops"]["training_profiler"]
                                                    / models[SCRATCH_128]["flops"]["training_profiler"]),
    }
    result["goals"] = {"streaming_loop_at_least_keras_fit": streaming_over_fit >= 1.0,
                       "default_step_at_128_at_most_1_5x_from_scratch": step_time_128 <= 1.5}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="Kaggle-style photo folder (default ../shared/data/landscapes)")
    parser.add_argument("--batch-size", type=int, help="default: params.yaml's train.batch_size")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = run(photo_folder(args.data), args.batch_size, args.rounds)
    save_results("throughput", result)
    print(f"matmul float32: {result['matmul_gflops']:.1f} GFLOP/s")
    for name, r in result["models"].items():
        infer = f"  inference {r['inference_images_per_s']:7.1f}" if "inference_images_per_s" in r else ""
        print(f"{name:50} train {r['train_images_per_s']:7.1f}{infer} images/s  "
              f"{r['flops']['forward_profiler'] / 1e9:.3f} / {r['flops']['training_profiler'] / 1e9:.3f} GFLOP "
              f"(fwd / train)  MFU {100 * r['utilisation']:.1f}%")
    print({k: round(v, 3) for k, v in result["comparison"].items()})
    print(result["goals"])


if __name__ == "__main__":
    main()
