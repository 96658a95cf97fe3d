"""Stage `evaluate`: score the model on the test split next to the gray baseline.

Writes `paths.eval_metrics` (model metrics, `baseline` with the same keys for
ab = 0, `per_class`), the sample grid under `paths.samples` and the model card beside
the model, and logs them into the training run in MLflow: the headline metrics next to
the gray baseline's, the per-class results as one table, the grid as a step-aware image,
the card as the run's (and registered versions') description.

If the store no longer holds that run (a fresh clone whose models came from a
DVC remote, a deleted or moved mlflow.db), evaluate says so before scoring and
logs into a new run tagged `colorizer.origin_run_id` = the lost run's id.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from colorizer.core import atomic
from colorizer.core.config import Params
from colorizer.core.errors import UserError, read_stage_json
from colorizer.core.progress import Progress
from colorizer.data import dataset
from colorizer.data import shards as shard_format
from colorizer.data.lab import AB_SCALE, normalise_l
from colorizer.evaluation import samples
from colorizer.evaluation.metrics import ColorMetrics
from colorizer.model.modelio import BadModelFile, load_model
from colorizer.tracking import model_card
from colorizer.tracking.tracker import (
    ORIGIN_TAG,
    Tracker,
)

GRID_FILE = "grid.png"
# The MLflow image key of the test grid; logged at the last epoch's step, beside the per-epoch "samples/epoch".
TEST_SAMPLES_KEY = "samples/test"
PER_CLASS_TABLE = "evaluation/per_class.json"


def _trained_model(path: str):
    """train's model; missing or damaged, one line saying how to get it back."""
    try:
        return load_model(path)
    except FileNotFoundError:
        raise UserError(f"{path} not found: run `dvc repro train` first") from None
    except BadModelFile as err:
        raise UserError(f"{err}: restore it with `dvc checkout train`, or re-run `dvc repro -f -s train`") from None


def evaluate(params: Params, shards: Path, root: Path) -> dict:
    paths = params.paths
    Path(paths.eval_metrics).unlink(missing_ok=True)  # an earlier evaluate's: never beside a newer model
    tracker = Tracker(params.mlflow, root, goes_on_without_store=False)
    tracker.check_reachable()
    run_id = _training_run_id(paths.run_info)
    stand_in = _stand_in_run(tracker, run_id, paths.run_info)  # before minutes of scoring, not after
    model = _trained_model(paths.model)
    meta = shard_format.read_meta(shards)

    picker = samples.Picker(meta["classes"], params.metrics.samples)
    progress = Progress("evaluate", total=meta["splits"]["test"]["examples"], unit="images")

    def each_batch(batch: dict) -> None:
        picker.offer(batch)
        progress.advance(len(batch["L"]))

    # The one place the test split is read (tests/training/test_test_split_read_once.py).
    shard_format.check(shards, ("test",))
    with shard_format.reading(shards, ("test",)):
        result = score_split(model, shards, "test", params.metrics.threshold, params.evaluate.batch_size, each_batch)
    progress.done()
    result["threshold"] = params.metrics.threshold

    fixed = picker.result()
    image = samples.grid(fixed, {"predicted": fixed.predict(model)}, title="(test)")
    grid_path = Path(paths.samples) / GRID_FILE
    with atomic.output_file(grid_path, "wb") as handle:
        image.save(handle, format="PNG")
    card = model_card.card(params, shards, root, test=result)
    with atomic.output_file(paths.model_card) as handle:
        handle.write(card)
    status_before = _open_run(tracker, params, run_id, stand_in, fixed.gray_png(0))
    try:
        _log(tracker, result, image, params.train.epochs, card, Path(paths.eval_metrics).name)
        if failed := tracker.unlogged("evaluate"):  # a run without its test results: not a finished evaluate
            raise failed
    except BaseException as err:  # the run was reopened: close it again, its training as it was
        tracker.finish(status_before or ("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"))
        raise
    atomic.write_json(paths.eval_metrics, result)  # last: metrics that exist belong to a finished evaluate
    print(f"evaluate: logged into MLflow run {tracker.run_id} ({tracker.display_uri})", flush=True)
    return result


# What MLflow accepts as a run id (mlflow.utils.validation).
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")


def _training_run_id(run_info: str) -> str:
    info = read_stage_json(run_info, "train")
    run_id = info.get("run_id") if isinstance(info, dict) else None
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise UserError(f"{run_info} is damaged (no run_id that MLflow could have made): restore it with "
                        "`dvc checkout train`, or re-run `dvc repro -f -s train`")
    return run_id


def _stand_in_run(tracker: Tracker, run_id: str, run_info: str) -> str | None:
    """None if the training run is in the store; else the run standing in for it: an earlier
    evaluate's (so forced re-runs do not pile up new runs), or "" for a new one."""
    if tracker.has_run(run_id):
        return None
    earlier = tracker.linked_run(run_id)
    into = f"the MLflow run {earlier} an earlier evaluate made for it" if earlier else "a new MLflow run"
    print(f"evaluate: {tracker.missing_run(run_id, run_info)}; logging the test results and the model into "
          f"{into}, tagged {ORIGIN_TAG}={run_id}", flush=True)
    return earlier or ""


def _open_run(tracker: Tracker, params: Params, run_id: str, stand_in: str | None, example_png: bytes) -> str | None:
    """Open the run to log into; returns the status it had (None for a new run)."""
    if stand_in is None:
        return tracker.resume(run_id)
    if stand_in:
        return tracker.resume(stand_in)
    tracker.start(params, tags={ORIGIN_TAG: run_id})
    tracker.log_model(Path(params.paths.model), example_png, None)  # the lost run's model, so it can be served
    return None


def score_split(model, shards: Path, split: str, threshold: float, batch_size: int, each_batch=None,
                predict=None) -> dict:
    """Every metric of `model` on one split, with the gray baseline and per class;
    `each_batch(batch)` sees every batch on the way (L, ab, label, file); `predict(x)` (model
    units) replaces `model.predict_on_batch`, e.g. to score a test-time augmentation. Choose
    settings on "val"; "test" is for the final result only."""
    predict = predict or model.predict_on_batch
    scores = ColorMetrics(threshold, shard_format.read_meta(shards)["classes"])
    for batch in dataset.evaluation(shards, split, batch_size, with_info=True).as_numpy_iterator():
        ab_pred = np.asarray(predict(normalise_l(batch["L"]))) * AB_SCALE
        scores.add_batch(np.concatenate([batch["L"], batch["ab"]], axis=-1), ab_pred, batch["label"])
        if each_batch:
            each_batch(batch)
    return scores.summary()


def headline_metrics(result: dict) -> dict[str, float]:
    """`test/<m>` and, beside it in the UI's sorted charts, `test/<m>_gray` (the gray baseline)."""
    metrics = {}
    for name, (model, gray) in model_card.headline(result).items():
        metrics[f"test/{name}"], metrics[f"test/{name}_gray"] = model, gray
    return {name: value for name, value in metrics.items() if value == value}  # NaN is left out


def per_class_table(result: dict):
    """One row per class: images and each headline metric with the gray baseline's."""
    import pandas as pd

    rows = []
    for name, scores in result["per_class"].items():
        row = {"class": name, "images": scores["images"]}
        for metric, (model, gray) in model_card.headline(scores).items():
            row[metric], row[f"{metric}_gray"] = round(model, 4), round(gray, 4)
        rows.append(row)
    return pd.DataFrame(rows)


def _log(tracker: Tracker, result: dict, grid, epochs: int, card: str, metrics_name: str) -> None:
    tracker.log_metrics(headline_metrics(result))
    tracker.log_table(per_class_table(result), PER_CLASS_TABLE)
    tracker.log_image(grid, TEST_SAMPLES_KEY, step=epochs)
    tracker.log_dict(result, f"metrics/{metrics_name}")
    tracker.describe(card)
    tracker.finish()
