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

from colorizer.data import dataset
from colorizer.data.lab import AB_SCALE, lab_to_rgb, normalise_l
from colorizer.evaluation.metrics import Totals
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
    """Validation metrics of `model` decoded with each candidate correction (`model` keeps the last).

    The network runs once per batch, up to its bin logits; only the cheap decoding (annealed
    mean, upsampling) runs per candidate, and the truth's RGB and the gray baseline are
    computed once per image, not once per candidate."""
    decoder = decoder_of(model)
    logits_of = keras.Model(model.inputs, decoder.input)
    upsample = _upsampling_after(model)
    offsets = {strength: losses.prior_correction(prior, strength) for strength in CANDIDATES}
    totals = {strength: Totals(threshold) for strength in CANDIDATES}
    gray = Totals(threshold)
    for batch in dataset.evaluation(shards, "val", batch_size, with_info=True).as_numpy_iterator():
        logits = logits_of.predict_on_batch(normalise_l(batch["L"]))
        lab = np.concatenate([batch["L"], batch["ab"]], axis=-1)
        rgb = [lab_to_rgb(image) for image in lab]
        for image, image_rgb in zip(lab, rgb):
            gray.add(Totals.of_image(threshold, image, np.zeros_like(image[..., 1:]), image_rgb))
        for strength in CANDIDATES:
            decoder.set_offsets(offsets[strength])
            ab = np.asarray(upsample(decoder(logits))) * AB_SCALE
            for image, image_rgb, prediction in zip(lab, rgb, ab):
                totals[strength].add(Totals.of_image(threshold, image, prediction, image_rgb))
    gray_psnr = gray.summary()["psnr"]
    rows = []
    for strength, total in totals.items():
        scores = total.summary()
        rows.append({"prior_correction": strength, **{key: float(scores[key]) for key in REPORTED},
                     "psnr_gain_db": float(scores["psnr"] - gray_psnr)})
    return rows


def _upsampling_after(model: keras.Model):
    """What the model does to the decoded ab after the annealed mean: upsampling to the input's
    size (`model.output_stride` > 1), or nothing."""
    last = model.get_layer("ab")
    return last if isinstance(last, keras.layers.UpSampling2D) else (lambda ab: ab)


def choose(rows: list[dict]) -> float:
    """The strongest correction within ACCURACY_SLACK of the most accurate candidate."""
    best = max(row["accuracy"] for row in rows)
    return max(row["prior_correction"] for row in rows if row["accuracy"] >= best - ACCURACY_SLACK)
