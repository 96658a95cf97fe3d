"""Stage `train`: fit the colorizer on the shards, streaming, logging every epoch to MLflow.

Writes the model (`paths.model`), the final metrics (`paths.train_metrics`), the
per-epoch history for `dvc plots` (`paths.history`) and the MLflow run id
(`paths.run_info`) that `evaluate` logs into.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import keras

from colorizer import atomic, dataset, samples, shard
from colorizer.config import Params
from colorizer.metrics import ab_accuracy, ab_mse
from colorizer.model import build_model
from colorizer.tracking import Tracker

HISTORY_FIELDS = ("epoch", "train_mse", "val_mse", "train_accuracy", "val_accuracy", "seconds")


def train(params: Params, shards: Path, root: Path) -> dict:
    paths, config = params.paths, params.train
    keras.utils.set_random_seed(params.seed)
    meta = shard.read_meta(shards)
    train_data = dataset.training(shards, config.batch_size, config.shuffle_buffer, config.flip, params.seed)
    val_data = dataset.evaluation(shards, "val", config.batch_size)
    test_batches = dataset.evaluation(shards, "test", 64, with_info=True).as_numpy_iterator()
    fixed = samples.pick(test_batches, meta["classes"], params.metrics.samples)

    model = build_model(params.model, meta["image_size"])
    model.compile(
        optimizer=keras.optimizers.Adam(params.lr),
        loss=keras.losses.MeanSquaredError(),
        metrics=[ab_mse(), ab_accuracy(params.metrics.threshold)],
    )
    tracker = Tracker(params.mlflow, root)
    run_id = tracker.start(params)
    print(f"train: MLflow run {run_id} in {tracker.uri}", flush=True)
    logger = EpochLogger(tracker, fixed, Path(paths.history), config.sample_every, config.epochs)
    started = time.monotonic()
    model.fit(
        train_data, validation_data=val_data, epochs=config.epochs, callbacks=[logger], shuffle=False, verbose=2
    )
    seconds = time.monotonic() - started

    _save_model(model, Path(paths.model))
    final = logger.rows[-1]
    summary = {
        "epochs": config.epochs,
        "train_mse": final["train_mse"],
        "val_mse": final["val_mse"],
        "train_accuracy": final["train_accuracy"],
        "val_accuracy": final["val_accuracy"],
        "seconds": round(seconds, 1),
        "train_images_per_second": round(meta["splits"]["train"]["examples"] * config.epochs / seconds, 2),
        "parameters": int(model.count_params()),
    }
    atomic.write_json(paths.train_metrics, summary)
    atomic.write_json(paths.run_info, {"run_id": run_id, "experiment": params.mlflow.experiment})
    tracker.log_metrics({"train/seconds": seconds, "model/parameters": summary["parameters"]})
    return summary


class EpochLogger(keras.callbacks.Callback):
    """Per epoch: a history row (CSV for `dvc plots`), MLflow metrics, and now and
    then a sample grid of the fixed test photos."""

    def __init__(self, tracker: Tracker, fixed: samples.SampleSet, history: Path, every: int, epochs: int):
        super().__init__()
        self.tracker, self.fixed, self.history = tracker, fixed, history
        self.every, self.epochs = every, epochs
        self.rows: list[dict] = []
        self._epoch_started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {
            "epoch": epoch + 1,
            "train_mse": float(logs["mse"]),
            "val_mse": float(logs["val_mse"]),
            "train_accuracy": float(logs["accuracy"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "seconds": round(time.monotonic() - self._epoch_started, 2),
        }
        self.rows.append(row)
        _write_history(self.history, self.rows)
        self.tracker.log_metrics(
            {f"{split}/{name}": row[f"{split}_{name}"] for split in ("train", "val") for name in ("mse", "accuracy")},
            step=epoch + 1,
        )
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs:
            image = samples.grid(self.fixed, self.fixed.predict(self.model), title=f"epoch {epoch + 1}")
            self.tracker.log_image(image, f"samples/epoch_{epoch + 1:03d}.png")


def _write_history(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic.output_file(path) as handle:
        handle.write(buffer.getvalue())


def _save_model(model: keras.Model, path: Path) -> None:
    partial = atomic.partial_path(path)
    model.save(partial)
    atomic.replace_path(partial, path)
