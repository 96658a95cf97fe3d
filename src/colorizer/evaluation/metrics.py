"""Colorization metrics: Keras metrics for training, streaming NumPy totals for evaluation.

Definitions (ab distances are Euclidean, in ab units):
- `mse`: mean squared error of ab in the model's units (ab / 128): the training loss.
- `accuracy`: share of pixels whose predicted ab lies within `metrics.threshold`
  (default 10) of the truth. Keras' built-in "accuracy" tests floats for equality
  and means nothing for regression; this is what it should mean here.
- `acc@5`: the same within 5 units.
- `auc`: raw accuracy AuC of Zhang et al. 2016: the share of pixels within t,
  averaged over the integer thresholds t = 0..150.
- `psnr`: PSNR (dB) of the RGB image rebuilt from the true L and the predicted ab
  against the RGB image rebuilt from the true L and ab, averaged over images
  (capped at 100 dB for an exact match).
- `colorfulness`: Hasler & Suesstrunk (2003) colourfulness of the output, averaged
  over images (0 for gray; about 30-40 for typical landscape photos);
  `colorfulness_truth` the same for the originals, `colorfulness_ratio` the first
  over the second: below 1 means washed-out colour.
- `bias_a`, `bias_b`: mean predicted minus true a and b over all pixels; a colour
  cast shows here (sepia: both positive).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops

from colorizer.data.lab import AB_SCALE, lab_to_rgb

AUC_MAX_THRESHOLD = 150
PSNR_CAP_DB = 100.0
METRIC_KEYS = ("mse", "accuracy", "acc@5", "auc", "psnr", "colorfulness", "colorfulness_truth",
               "colorfulness_ratio", "bias_a", "bias_b")


# ---------------------------------------------------------------- Keras (training)


def ab_distance(y_true, ab):
    """Per-pixel Euclidean ab distance in ab units, from tensors in model units."""
    return ops.sqrt(ops.sum(ops.square((y_true - ab) * AB_SCALE), axis=-1) + 1e-12)


def per_image_accuracy(y_true, ab, threshold: float):
    """Per image: the share of pixels whose ab lies within `threshold` ab units of the truth."""
    return ops.mean(ops.cast(ab_distance(y_true, ab) <= threshold, "float32"), axis=(1, 2))


def per_image_mse(y_true, ab):
    """Per image: the mean squared ab error in model units."""
    difference = ops.cast(y_true, "float32") - ops.cast(ab, "float32")
    return ops.mean(ops.square(difference), axis=(1, 2, 3))


def ab_accuracy(threshold: float, name: str = "accuracy") -> keras.metrics.Metric:
    return keras.metrics.MeanMetricWrapper(per_image_accuracy, name=name, threshold=threshold)


def ab_mse() -> keras.metrics.Metric:
    return keras.metrics.MeanMetricWrapper(per_image_mse, name="mse")


# ---------------------------------------------------------------- NumPy (evaluation)


@dataclass
class Totals:
    """Sums from which every metric follows: `add` images or other totals, then `summary()`."""

    threshold: float
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(AUC_MAX_THRESHOLD + 2, np.int64))
    within: int = 0
    within5: int = 0
    squared_error: float = 0.0
    pixels: int = 0
    psnr_sum: float = 0.0
    colorfulness_sum: float = 0.0
    colorfulness_truth_sum: float = 0.0
    bias: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))
    images: int = 0

    @classmethod
    def of_image(cls, threshold: float, lab_true: np.ndarray, ab_pred: np.ndarray, rgb_true: np.ndarray):
        """One image: true LAB (H, W, 3), predicted ab (H, W, 2), and RGB of the truth."""
        difference = ab_pred - lab_true[..., 1:]
        distance = np.sqrt(np.sum(np.square(difference), axis=-1))
        # count(d <= t) for integer t == count(ceil(d) <= t): one histogram gives every threshold.
        bins = np.minimum(np.ceil(distance - 1e-6), AUC_MAX_THRESHOLD + 1).astype(np.int64)
        rgb_pred = lab_to_rgb(np.concatenate([lab_true[..., :1], ab_pred], axis=-1))
        return cls(
            threshold=threshold,
            histogram=np.bincount(bins.ravel(), minlength=AUC_MAX_THRESHOLD + 2),
            within=int(np.count_nonzero(distance <= threshold)),
            within5=int(np.count_nonzero(distance <= 5.0)),
            squared_error=float(np.sum(np.square(difference / AB_SCALE))),
            pixels=distance.size,
            psnr_sum=psnr(rgb_true, rgb_pred),
            colorfulness_sum=colorfulness(rgb_pred),
            colorfulness_truth_sum=colorfulness(rgb_true),
            bias=np.sum(difference.reshape(-1, 2), axis=0, dtype=np.float64),
            images=1,
        )

    def add(self, other: "Totals") -> None:
        self.histogram = self.histogram + other.histogram
        self.within += other.within
        self.within5 += other.within5
        self.squared_error += other.squared_error
        self.pixels += other.pixels
        self.psnr_sum += other.psnr_sum
        self.colorfulness_sum += other.colorfulness_sum
        self.colorfulness_truth_sum += other.colorfulness_truth_sum
        self.bias = self.bias + other.bias
        self.images += other.images

    def summary(self) -> dict[str, float]:
        if not self.images:
            return {key: float("nan") for key in METRIC_KEYS} | {"images": 0}
        within_t = np.cumsum(self.histogram)[: AUC_MAX_THRESHOLD + 1] / self.pixels
        colourful, colourful_truth = self.colorfulness_sum / self.images, self.colorfulness_truth_sum / self.images
        return {
            "mse": self.squared_error / (2 * self.pixels),  # mean over both ab channels
            "accuracy": self.within / self.pixels,
            "acc@5": self.within5 / self.pixels,
            "auc": float(np.mean(within_t)),
            "psnr": self.psnr_sum / self.images,
            "colorfulness": colourful,
            "colorfulness_truth": colourful_truth,
            "colorfulness_ratio": colourful / colourful_truth if colourful_truth else float("nan"),
            "bias_a": float(self.bias[0] / self.pixels),
            "bias_b": float(self.bias[1] / self.pixels),
            "images": self.images,
        }


class ColorMetrics:
    """Model and gray-baseline (ab = 0) totals, overall and per class."""

    def __init__(self, threshold: float, classes: list[str]):
        self.threshold, self.classes = threshold, classes
        self.totals = defaultdict(lambda: Totals(threshold))  # keyed by (who, class or None)

    def add_batch(self, lab_true: np.ndarray, ab_pred: np.ndarray, labels: np.ndarray) -> None:
        for truth, prediction, label in zip(lab_true, ab_pred, labels):
            name, rgb_true = self.classes[int(label)], lab_to_rgb(truth)
            for who, ab in (("model", prediction), ("baseline", np.zeros_like(prediction))):
                image = Totals.of_image(self.threshold, truth, ab, rgb_true)
                self.totals[who, None].add(image)
                self.totals[who, name].add(image)

    def summary(self) -> dict:
        result = self.totals["model", None].summary()
        result["baseline"] = self.totals["baseline", None].summary()
        names = sorted({name for _, name in self.totals if name is not None})
        result["per_class"] = {
            name: {**self.totals["model", name].summary(), "baseline": self.totals["baseline", name].summary()}
            for name in names
        }
        return result


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an RGB image with values in [0, 1]."""
    r, g, b = (rgb[..., i].astype(np.float64) * 255.0 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def psnr(rgb_true: np.ndarray, rgb_guess: np.ndarray) -> float:
    """PSNR (dB) between two RGB images with values in [0, 1]."""
    mse = float(np.mean(np.square(rgb_true - rgb_guess)))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * np.log10(1.0 / mse))
