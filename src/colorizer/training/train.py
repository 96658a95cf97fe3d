"""Stage `train`: fit the colorizer on the shards, streaming, logging every epoch to MLflow.

Writes the model (`paths.model`), the final metrics (`paths.train_metrics`), the
per-epoch history for `dvc plots` (`paths.history`) and the MLflow run id
(`paths.run_info`) that `evaluate` logs into. A run killed part-way resumes
from its last completed epoch (see `checkpoint.py`). Devices, mixed precision
and multi-worker training: see `distribute.py`.

The training loop is written out here (a `tf.function` step run by the
`tf.distribute` strategy) rather than left to `Model.fit`: Keras 3's `fit` does
not work with MultiWorkerMirroredStrategy (keras-team/keras#20585), and one loop
for every strategy keeps single-device and multi-machine runs identical.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from colorizer.core import atomic
from colorizer.core.config import Params
from colorizer.data import dataset
from colorizer.data import shards as shard_format
from colorizer.evaluation import decoding, samples
from colorizer.evaluation.metrics import per_image_accuracy, per_image_mse
from colorizer.model import backbones, losses
from colorizer.model.network import ab_of, inference_model, model_and_loss, split_scene
from colorizer.tracking import model_card
from colorizer.tracking.tracker import (
    ORIGIN_TAG,
    Tracker,
)
from colorizer.training import checkpoint, distribute, stopping
from colorizer.training.optimizer import make_optimizer

HISTORY_FIELDS = ("epoch", "train_mse", "val_mse", "train_accuracy", "val_accuracy", "seconds")
# The MLflow image key of the per-epoch sample grids (one chart with a step slider in the UI);
# under "samples/" so that it shares the chart view's `samples` section with evaluate's "samples/test".
SAMPLES_KEY = "samples/epoch"
DECODING_TABLE = "decoding/prior_correction_val.json"  # the validation frontier `model.prior_correction: auto` chose from
READ_SPLITS = ("train", "val")  # never the test split: only evaluate reads it


def train(params: Params, shards: Path, root: Path) -> dict | None:
    """Train; returns the summary written to `paths.train_metrics` (None on non-chief workers)."""
    paths, config = params.paths, params.train
    devices = distribute.setup(config.strategy, config.mixed_precision)
    tracker = Tracker(params.mlflow, root) if devices.is_chief else None
    folder = Path(paths.checkpoints)
    if tracker:
        tracker.check_reachable()  # fail before any training, not after it
        checkpoint.claim(folder)  # and refuse a checkpoint folder that holds someone else's files
    keras.utils.set_random_seed(params.train.seed)
    meta = shard_format.read_meta(shards)
    _check_shards_per_worker(meta, devices)
    shard_format.check(shards, READ_SPLITS)  # a damaged shard named now, not hours into training
    steps = math.ceil(meta["splits"]["train"]["examples"] / (config.batch_size * devices.replicas))
    model, optimizer, step = _training_setup(params, meta, shards, devices, steps)
    validate = _validation(model, params.metrics.threshold)

    key = checkpoint.fingerprint(params.flat(), meta)
    resumed = checkpoint.load(folder, key, model, optimizer) if config.resume else None
    log = saver = None
    started = time.monotonic()
    stop = stopping.StopRequest()
    try:
        if devices.is_chief:  # in the try: a run opened here is closed whatever stops the stage
            _start_tracking(tracker, params, shards, resumed)
            log = EpochLog(tracker, _fixed_samples(shards, meta, params), config, resumed.history if resumed else [])
            saver = checkpoint.Checkpointer(folder, key, tracker.run_id)
        with stop.installed(), shard_format.reading(shards, READ_SPLITS):
            _epochs(params, devices, shards, step, steps, validate, resumed, stop, model, optimizer, log, saver)
        if not devices.is_chief:
            return None
        summary = _summary(model, log.rows, meta, time.monotonic() - started, resumed, devices)
        chosen = _choose_prior_correction(params, model, shards, tracker)
        if chosen is not None:
            # val_accuracy is the last epoch's, decoded without correction; these are the model as saved.
            summary["prior_correction"] = chosen["prior_correction"]
            summary.update({f"val_{key}_decoded": chosen[key] for key in ("accuracy", "psnr", "colorfulness_ratio")})
        _publish(params, tracker, model, summary, log.rows, log.fixed.gray_png(0))
    except BaseException as err:
        if tracker and tracker.run_id:  # a SIGKILL gets here never: the next attempt closes that run (_start_tracking)
            stopped = isinstance(err, (KeyboardInterrupt, stopping.TrainingStopped))
            tracker.finish("KILLED" if stopped else "FAILED")
        raise
    tracker.describe(model_card.card(params, shards, tracker.root))  # evaluate adds the test results
    tracker.finish()  # said here: MLflow's log_model block marks the run FAILED when the model fails to log
    tracker.report_failures("train")
    return summary


def _training_setup(params: Params, meta: dict, shards: Path, devices, steps: int):
    """Model, optimizer and compiled step, created in the strategy's scope."""
    if params.train.scene_weight > 0 and (params.model.arch != "hybrid" or len(meta["classes"]) < 2):
        print(f"train: train.scene_weight {params.train.scene_weight} has no effect: the scene loss needs "
              f"model.arch hybrid and at least 2 classes (got {params.model.arch}, {len(meta['classes'])})", flush=True)
    with devices.strategy.scope():
        model, loss = model_and_loss(params, meta["image_size"], shard_format.read_ab_histogram(shards),
                                     scene_classes=len(meta["classes"]))
        optimizer = make_optimizer(params.lr, params.train.schedule, steps * params.train.epochs,
                                   backbones.trainable_backbone_variables(model), params.train.backbone_lr_scale)
        # Create the optimizer's slots here, not lazily inside the distributed step (fails under MirroredStrategy).
        optimizer.build(model.trainable_variables)
    return model, optimizer, _train_step(devices.strategy, model, optimizer, loss, params, devices.replicas)


def _epochs(params: Params, devices, shards: Path, step, steps: int, validate, resumed, stop, model, optimizer,
            log, saver) -> None:
    """The epochs still to run, each checkpointed; on a stop request, a checkpoint of the steps so far."""
    first_epoch, progress = (resumed.epoch, resumed.progress) if resumed else (0, checkpoint.EpochProgress())
    for epoch in range(first_epoch, params.train.epochs):
        if stop.requested:  # asked before this epoch's first step: the last checkpoint stands
            raise _stopped(stop, epoch, progress, saver)
        # Each epoch's batches depend on (seed, epoch) alone, so a resumed run sees the same data; one
        # stopped within the epoch skips the batches it already trained on.
        batches = iter(_distributed_training_data(devices, shards, params, epoch, skip=progress.steps))
        progress = _steps(step, batches, steps, progress, stop, alone=devices.workers == 1)
        if progress.steps < steps:
            if devices.is_chief:
                saver.save(epoch, model, optimizer, log.rows, progress)
            raise _stopped(stop, epoch, progress, saver)
        row = _finish_epoch(epoch, progress, validate, shards, params)
        row["lr"] = _learning_rate(optimizer)
        progress = checkpoint.EpochProgress()
        if devices.is_chief:
            log.add(row, model)
            saver.save(epoch + 1, model, optimizer, log.rows)
    if stop.requested:  # asked during the last epoch's end: its checkpoint stands, publishing waits
        raise _stopped(stop, params.train.epochs, checkpoint.EpochProgress(), saver)


def _steps(step, batches, steps: int, progress, stop, alone: bool):
    """Train until the epoch's last step, or a stop request: after the step under way when this
    process is `alone`, else after the next one, in which every worker learns of it (all stop
    at the same step)."""
    totals, done, started = np.asarray(progress.totals, np.float64), progress.steps, time.monotonic()
    while done < steps:
        out = np.asarray(step(batches, stop.requested_tensor()), np.float64)
        totals, done = totals + out[:-1], done + 1
        if out[-1] > 0 or (alone and stop.requested):
            stop.signum = stop.signum or signal.SIGTERM  # another worker was asked
            break
    return checkpoint.EpochProgress(done, totals.tolist(), progress.seconds + time.monotonic() - started)


def _stopped(stop, epoch: int, progress, saver) -> stopping.TrainingStopped:
    where = f"epoch {epoch + 1}, step {progress.steps}" if progress.steps else f"epoch {epoch}"
    folder = saver.folder if saver else "the checkpoint folder"
    return stopping.TrainingStopped(
        f"stopped by {stop.name} after {where}, checkpoint saved in {folder}; run `dvc repro` "
        "(or python stages/train.py) again to resume from there", stop.signum)


def _finish_epoch(epoch: int, progress, validate, shards: Path, params: Params) -> dict:
    started = time.monotonic()
    val = validate(dataset.evaluation(shards, "val", params.train.batch_size))
    row = _history_row(epoch, np.asarray(progress.totals), val, progress.seconds + time.monotonic() - started)
    print(_epoch_line(row, params.train.epochs), flush=True)
    return row


def _publish(params: Params, tracker: Tracker, model, summary: dict, log_rows: list[dict], example_png: bytes) -> None:
    """The chief's outputs: the model (file and MLflow), the DVC metrics, the run id for evaluate.

    An earlier training's run id and metrics go first and the run id comes back last, so a stage
    killed part-way leaves no new model beside an old run id (evaluate would log into that run)."""
    paths = params.paths
    for stale in (paths.run_info, paths.train_metrics, paths.history):
        Path(stale).unlink(missing_ok=True)
    _save_model(inference_model(model), Path(paths.model))
    _write_history(Path(paths.history), log_rows)  # only now: a killed run leaves no history that looks complete
    tracker.log_model(Path(paths.model), example_png, params.mlflow.model_name if params.mlflow.register else None)
    atomic.write_json(paths.train_metrics, summary)
    atomic.write_json(paths.run_info, {"run_id": tracker.run_id, "experiment": params.mlflow.experiment})
    tracker.log_metrics({"model/train_seconds": summary["seconds"], "model/parameters": summary["parameters"]})
    checkpoint.clear(Path(paths.checkpoints))


def _choose_prior_correction(params: Params, model, shards: Path, tracker: Tracker) -> dict | None:
    """`model.prior_correction: auto`: the decoding's prior correction, chosen on the validation
    split now that training is done (rule: evaluation/decoding.py), with its validation scores
    (the frontier's row); None if not asked or not a classifier."""
    if params.model.prior_correction != "auto":
        return None
    if decoding.decoder_of(model) is None:
        print(f"train: model.prior_correction auto has no effect: train.loss {params.train.loss} "
              "predicts ab directly, there is no decoding to choose", flush=True)
        return None
    import pandas as pd  # here: only an `auto` choice needs it

    prior = losses.colour_prior(shard_format.read_ab_histogram(shards), losses.ab_bins())
    # train.batch_size, as the per-epoch validation: evaluate.batch_size is not among this stage's params.
    rows = decoding.frontier(inference_model(model), shards, prior, params.metrics.threshold, params.train.batch_size)
    chosen = decoding.choose(rows)
    decoding.set_prior_correction(model, prior, chosen)
    for row in rows:
        print(f"train: prior_correction {row['prior_correction']:.2f} on val: accuracy {row['accuracy']:.4f}, "
              f"psnr {row['psnr']:.2f} dB, colourfulness {row['colorfulness_ratio']:.2f}"
              + ("  <- chosen" if row["prior_correction"] == chosen else ""), flush=True)
    tracker.log_metrics({"model/prior_correction": chosen})
    tracker.log_table(pd.DataFrame(rows).round(4), DECODING_TABLE)
    return next(row for row in rows if row["prior_correction"] == chosen)


def _train_step(strategy, model, optimizer, loss_fn, params: Params, replicas: int):
    """One distributed step; returns [loss, mse, within-threshold share, images], summed over images.
    The loss is the colour loss plus `train.scene_weight` x the scene cross-entropy, if the model has a scene head."""
    global_batch = params.train.batch_size * replicas
    threshold = params.metrics.threshold
    scene_weight = params.train.scene_weight

    def replica_step(x, y, label, stop):
        # Only the trainable variables watched: a frozen backbone's variables were created trainable
        # (TensorFlow's flag does not follow Keras'), and a tape watching them backpropagated through
        # the whole backbone, twice its forward pass in every step for nothing.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in model.trainable_variables])
            output = model(x, training=True)
            colour, scene = split_scene(model, output)
            per_image = tf.reduce_mean(tf.cast(loss_fn(y, colour), tf.float32), axis=[1, 2])
            if scene is not None:
                per_image += scene_weight * keras.losses.sparse_categorical_crossentropy(
                    label, scene, from_logits=True)
            loss = tf.reduce_sum(per_image) / global_batch
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return tf.stack([tf.reduce_sum(per_image), *_image_metric_sums(y, output, threshold), stop])

    if params.train.jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def step(iterator, stop=tf.constant(0.0)):
        """-> the sums, then the workers' stop requests summed (> 0: every worker stops after this step)."""
        x, y, label = next(iterator)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica_step, args=(x, y, label, stop)), axis=None)

    return step


def _image_metric_sums(y, output, threshold: float):
    """[sum of per-image MSE (model units), sum of per-image share within threshold, image count]."""
    ab = tf.cast(ab_of(output), tf.float32)
    return [tf.reduce_sum(per_image_mse(y, ab)), tf.reduce_sum(per_image_accuracy(y, ab, threshold)),
            tf.cast(tf.shape(y)[0], tf.float32)]


def _validation(model, threshold: float):
    """Validation on this process alone (no collectives, so workers never wait on each other);
    its step is traced once, not every epoch."""

    @tf.function
    def sums(x, y):
        return tf.stack(_image_metric_sums(y, model(x, training=False), threshold))

    def validate(batches) -> dict:
        total = sum(np.asarray(sums(x, y), np.float64) for x, y in batches)
        return {"mse": total[0] / total[2], "accuracy": total[1] / total[2]}

    return validate


def _distributed_training_data(devices: distribute.Devices, shards: Path, params: Params, epoch: int, skip: int = 0):
    """The epoch's batches, less the first `skip` (already trained on before a stop)."""
    config = params.train

    def per_worker(context: tf.distribute.InputContext):
        return dataset.training(
            shards, config.batch_size, config.shuffle_buffer, config.flip, params.train.seed, epoch,
            worker=(context.input_pipeline_id, context.num_input_pipelines), labels=True, crop=config.crop,
        ).skip(skip)

    return devices.strategy.distribute_datasets_from_function(per_worker)


def _check_shards_per_worker(meta: dict, devices: distribute.Devices) -> None:
    files = len(meta["splits"]["train"]["files"])
    if files < devices.workers:
        raise ValueError(
            f"shard.num_shards: the train split has {files} shard files for {devices.workers} workers; "
            "each worker reads whole files, so set shard.num_shards to at least the number of workers"
        )


def _start_tracking(tracker: Tracker, params: Params, shards: Path, resumed) -> None:
    """Open the MLflow run this attempt logs into, and close the one a killed attempt left open.

    Resuming: into the checkpoint's run; if the store no longer holds it, into a new
    run tagged with the lost run's id, carrying the earlier epochs' curves (the
    weights come from the checkpoint either way). Otherwise a new run."""
    folder = Path(params.paths.checkpoints)
    _close_abandoned(tracker, folder, keep=resumed.run_id if resumed else None)
    if resumed and tracker.has_run(resumed.run_id):
        tracker.resume(resumed.run_id)
        checkpoint.record_attempt(folder, tracker.run_id)
    else:
        lost = tracker.missing_run(resumed.run_id, f"the checkpoint in {folder}") if resumed else None
        if not resumed:
            checkpoint.discard_state(folder)
        tracker.start(params, tags={ORIGIN_TAG: resumed.run_id} if resumed else None)
        # Recorded before anything else is logged: an attempt SIGKILLed from here on leaves a run
        # that the next attempt closes.
        checkpoint.record_attempt(folder, tracker.run_id)
        if lost:
            print(f"train: {lost}; continuing from the checkpoint (epoch {resumed.epoch}) in a new MLflow run "
                  f"{tracker.run_id}, tagged {ORIGIN_TAG}={resumed.run_id}", flush=True)
        _log_data(tracker, params, shards)
        for row in resumed.history if resumed else []:
            tracker.log_metrics(_epoch_metrics(row), step=row["epoch"])
    print(f"train: MLflow run {tracker.run_id} in {tracker.display_uri}", flush=True)


def _close_abandoned(tracker: Tracker, folder: Path, keep: str | None) -> None:
    """Mark KILLED the run a killed attempt left RUNNING (unless it is the one resumed now)."""
    abandoned = checkpoint.previous_attempt(folder)
    if abandoned and abandoned != keep and tracker.end_abandoned(abandoned):
        print(f"train: marked MLflow run {abandoned} KILLED: an earlier attempt left it running "
              f"(found in {folder / checkpoint.ATTEMPT})", flush=True)


def _fixed_samples(shards: Path, meta: dict, params: Params) -> samples.SampleSet:
    """The fixed photos of the per-epoch grids, from the validation split: training never
    reads the test split (only evaluate does, for its `samples/test` grid)."""
    val_batches = dataset.evaluation(shards, "val", 64, with_info=True).as_numpy_iterator()
    return samples.pick(val_batches, meta["classes"], params.metrics.samples)


def _history_row(epoch: int, totals: np.ndarray, val: dict, seconds: float) -> dict:
    images = totals[3]
    return {
        "epoch": epoch + 1,
        "train_mse": totals[1] / images,
        "val_mse": val["mse"],
        "train_accuracy": totals[2] / images,
        "val_accuracy": val["accuracy"],
        "seconds": round(seconds, 2),
        "train_loss": totals[0] / images,
        "images": int(images),
    }


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f}, mse {row['train_mse']:.4f} "
        f"(val {row['val_mse']:.4f}), accuracy {row['train_accuracy']:.3f} (val {row['val_accuracy']:.3f}), "
        f"{row['seconds']:.0f} s, {row['images'] / max(row['seconds'], 1e-9):.1f} images/s"
    )


def _summary(model, rows: list[dict], meta: dict, seconds: float, resumed, devices) -> dict:
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
        "replicas": devices.replicas,
    }


def _learning_rate(optimizer) -> float:
    """The rate the schedule has reached (the LossScaleOptimizer passes it through)."""
    return float(np.asarray(optimizer.learning_rate))


def _log_data(tracker: Tracker, params: Params, shards: Path) -> None:
    """What went into training: a dataset input (source, manifest digest, counts per split,
    images left out), and the data report listing every image left out, with reasons."""
    data = model_card.data_summary(params, shards, tracker.root)
    tracker.log_dataset(data.name, data.name, data.digest, data.profile())
    tracker.log_artifact(shard_format.data_report_path(shards), "data")


# The per-epoch curves. "epoch/..." sorts first among the UI's chart sections, so they lead the chart view.
CURVES = ("train_loss", "train_mse", "val_mse", "train_accuracy", "val_accuracy", "lr")


def _epoch_metrics(row: dict) -> dict[str, float]:
    """A history row's MLflow metrics (a row restored from history.csv lacks train_loss and lr)."""
    return {f"epoch/{name}": row[name] for name in CURVES if name in row}


class EpochLog:
    """Per epoch: a history row (for `dvc plots`, written once training ends), MLflow
    metrics, and now and then a sample grid of the fixed validation photos."""

    def __init__(self, tracker: Tracker, fixed: samples.SampleSet, config, rows: list[dict]):
        self.tracker, self.fixed = tracker, fixed
        self.every, self.epochs = config.sample_every, config.epochs
        self.rows = list(rows)

    def add(self, row: dict, model) -> None:
        self.rows.append({key: row[key] for key in HISTORY_FIELDS})
        self.tracker.log_metrics(_epoch_metrics(row), step=row["epoch"])
        if row["epoch"] % self.every == 0 or row["epoch"] == self.epochs:
            image = samples.grid(self.fixed, {"predicted": self.fixed.predict(model)}, title=f"epoch {row['epoch']}")
            self.tracker.log_image(image, SAMPLES_KEY, step=row["epoch"])


def _write_history(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic.output_file(path) as handle:
        handle.write(buffer.getvalue())


def _save_model(model: keras.Model, path: Path) -> None:
    partial = atomic.partial_path(path)
    try:
        with atomic.writing(path, partial):
            model.save(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    atomic.replace_path(partial, path)
