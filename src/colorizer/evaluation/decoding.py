"""`model.prior_correction: auto`: choose the decode-time prior correction on the validation split.

A classification model decodes its per-pixel distribution over ab bins after dividing it
by the training colour prior to a power (`losses.prior_correction`): 0 keeps the model's
own, cautious colours; more brings back rarer, vivid ones at some cost in accuracy. The
setting needs no retraining, so `train` tries each candidate on the validation split once
training ends and keeps, by a fixed rule, the strongest correction whose validation
accuracy stays within ACCURACY_SLACK of the best candidate's. The test split is never read.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from colorizer.evaluation.evaluate import score_split
from colorizer.model import losses

CANDIDATES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
ACCURACY_SLACK = 0.01  # accuracy (share of pixels within the threshold) given up for vividness, at most
REPORTED = ("accuracy", "psnr", "auc", "colorfulness_ratio")


def decoder_of(model: keras.Model) -> losses.AnnealedMean | None:
    """The model's annealed-mean decoding layer (None: a regression model, nothing to choose)."""
    return next((layer for layer in model.layers if isinstance(layer, losses.AnnealedMean)), None)


def set_prior_correction(model: keras.Model, prior: np.ndarray, strength: float) -> None:
    decoder_of(model).set_offsets(losses.prior_correction(prior, strength))


def frontier(model: keras.Model, shards: Path, prior: np.ndarray, threshold: float, batch_size: int) -> list[dict]:
    """Validation metrics of `model` decoded with each candidate correction (`model` keeps the last)."""
    rows = []
    for strength in CANDIDATES:
        set_prior_correction(model, prior, strength)
        # A fresh functional wrapper: a traced predict step keeps the offsets it was traced with.
        scores = score_split(keras.Model(model.inputs, model.outputs), shards, "val", threshold, batch_size)
        rows.append({"prior_correction": strength, **{key: float(scores[key]) for key in REPORTED},
                     "psnr_gain_db": float(scores["psnr"] - scores["baseline"]["psnr"])})
    return rows


def choose(rows: list[dict]) -> float:
    """The strongest correction within ACCURACY_SLACK of the most accurate candidate."""
    best = max(row["accuracy"] for row in rows)
    return max(row["prior_correction"] for row in rows if row["accuracy"] >= best - ACCURACY_SLACK)
