"""Stage `train`: fit the colorizer on the shards, streaming, logging every epoch to MLflow.

Writes the model (`paths.model`), the final metrics (`paths.train_metrics`), the
per-epoch history for `dvc plots` (`paths.history`) and the MLflow run id
(`paths.run_info`) that `evaluate` logs into. A run killed part-way resumes
from its last completed epoch (see `checkpoint.py`).
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import keras

from colorizer import atomic, checkpoint, dataset, samples, shard
from colorizer.config import Params
from colorizer.metrics import ab_accuracy, ab_mse
from colorizer.model import build_model
from colorizer.tracking import Tracker

HISTORY_FIELDS = ("epoch", "train_mse", "val_mse", "train_accuracy", "val_accuracy", "seconds")


def train(params: Params, shards: Path, root: Path) -> dict:
    paths, config = params.paths, params.train
    tracker = Tracker(params.mlflow, root)
    tracker.check_reachable()  # fail before any training, not after it
    keras.utils.set_random_seed(params.seed)
    meta = shard.read_meta(shards)
    model = _compiled_model(params, meta["image_size"])

    key = checkpoint.fingerprint(params.flat(), meta)
    resumed = checkpoint.load(Path(paths.checkpoints), key, model) if config.resume else None
    if resumed:
        tracker.resume(resumed.run_id)
    else:
        checkpoint.clear(Path(paths.checkpoints))
        tracker.start(params)
        _log_data_report(tracker, Path(paths.data_report))
    print(f"train: MLflow run {tracker.run_id} in {tracker.display_uri}", flush=True)

    test_batches = dataset.evaluation(shards, "test", 64, with_info=True).as_numpy_iterator()
    logger = EpochLogger(
        tracker, samples.pick(test_batches, meta["classes"], params.metrics.samples), Path(paths.history),
        config.sample_every, config.epochs, resumed.history if resumed else [],
    )
    saver = checkpoint.Checkpointer(Path(paths.checkpoints), key, tracker.run_id, logger.rows)
    started = time.monotonic()
    model.fit(
        dataset.training(shards, config.batch_size, config.shuffle_buffer, config.flip, params.seed),
        validation_data=dataset.evaluation(shards, "val", config.batch_size),
        epochs=config.epochs,
        initial_epoch=resumed.epoch if resumed else 0,
        callbacks=[logger, saver],
        shuffle=False,
        verbose=2,
    )
    summary = _summary(model, logger.rows, meta, time.monotonic() - started, resumed)
    _save_model(model, Path(paths.model))
    registered = params.mlflow.model_name if params.mlflow.register else None
    tracker.log_model(Path(paths.model), logger.fixed.gray_png(0), registered)
    atomic.write_json(paths.train_metrics, summary)
    atomic.write_json(paths.run_info, {"run_id": tracker.run_id, "experiment": params.mlflow.experiment})
    tracker.log_metrics({"train/seconds": summary["seconds"], "model/parameters": summary["parameters"]})
    checkpoint.clear(Path(paths.checkpoints))
    tracker.report_failures()
    return summary


def _compiled_model(params: Params, image_size: int) -> keras.Model:
    model = build_model(params.model, image_size)
    model.compile(
        optimizer=keras.optimizers.Adam(params.lr),
        loss=keras.losses.MeanSquaredError(),
        metrics=[ab_mse(), ab_accuracy(params.metrics.threshold)],
    )
    return model


def _summary(model, rows: list[dict], meta: dict, seconds: float, resumed) -> dict:
    final = rows[-1]
    epochs_here = len(rows) - (resumed.epoch if resumed else 0)
    return {
        "epochs": final["epoch"],
        "train_mse": final["train_mse"],
        "val_mse": final["val_mse"],
        "train_accuracy": final["train_accuracy"],
        "val_accuracy": final["val_accuracy"],
        "seconds": round(seconds, 1),
        "train_images_per_second": round(meta["splits"]["train"]["examples"] * epochs_here / seconds, 2),
        "parameters": int(model.count_params()),
    }


def _log_data_report(tracker: Tracker, report_path: Path) -> None:
    """What went into training: image counts and everything left out, with reasons."""
    report = json.loads(report_path.read_text())
    counts = {f"data/images/{split}": n for split, n in report["images"].items()}
    tracker.log_metrics({**counts, "data/skipped": report["skipped_count"],
                         "data/duplicates": report["duplicates_count"]})
    tracker.log_artifact(report_path, "data")


class EpochLogger(keras.callbacks.Callback):
    """Per epoch: a history row (CSV for `dvc plots`), MLflow metrics, and now and
    then a sample grid of the fixed test photos."""

    def __init__(self, tracker: Tracker, fixed: samples.SampleSet, history: Path, every: int, epochs: int,
                 rows: list[dict]):
        super().__init__()
        self.tracker, self.fixed, self.history = tracker, fixed, history
        self.every, self.epochs = every, epochs
        self.rows = list(rows)
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
