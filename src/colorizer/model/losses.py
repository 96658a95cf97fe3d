"""Training losses, in backend-agnostic Keras 3 (keras.ops only).

`mse` (the design's loss) regresses ab and, faced with several plausible colours,
predicts their mean: a dull, brownish average (Zhang et al. 2016). `l1` predicts
their median, somewhat less dull. `classification` is Zhang et al.'s remedy: the
ab plane is cut into bins (10 x 10 units, the ~300 that sRGB can show), the
network predicts a distribution over bins per pixel, trained with cross-entropy
against a soft encoding of the true colour (Gaussian over nearby bins), with
rare colours up-weighted ("class rebalancing"); at inference the distribution is
turned back into one colour by the annealed mean (`AnnealedMean`), whose
temperature trades the mean's safety against the mode's vividness.

Every loss takes (true ab / 128, model output): the ab prediction for `mse`
and `l1`, the [ab, bin logits] pair of a classification model, whose logits
may be at a lower resolution than the image (the targets are pooled to match).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

from colorizer.data.lab import AB_SCALE, rgb_to_lab

BIN_SIZE = 10.0
SOFT_SIGMA = 5.0  # soft-encoding width in ab units (Zhang et al.)


def ab_bins() -> np.ndarray:
    """Centres (Q, 2) of the 10-unit ab bins that some sRGB colour falls into."""
    return _ab_bins().copy()


@functools.cache
def _ab_bins() -> np.ndarray:  # 0.6 s of LAB conversions, asked for by every model built and decoded
    levels = np.arange(0, 256, 3, dtype=np.uint8)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    ab = rgb_to_lab(cube)[:, 1:]
    cells = np.unique(np.round(ab / BIN_SIZE).astype(np.int64), axis=0)
    return (cells * BIN_SIZE).astype(np.float32)


def colour_prior(histogram: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """How often each bin's colour occurs in the training set, Gaussian-smoothed (Q,).

    `histogram` counts the quantised ab values (256 x 256, index = ab + 128)."""
    a, b = np.meshgrid(np.arange(256) - 128.0, np.arange(256) - 128.0, indexing="ij")
    cells = np.stack([a.ravel(), b.ravel()], -1)
    nearest = np.concatenate([_nearest_bin(chunk, bins) for chunk in np.array_split(cells, 16)])
    counts = np.bincount(nearest, weights=histogram.ravel().astype(np.float64), minlength=len(bins))
    p = counts / max(counts.sum(), 1.0)
    distance2 = ((bins[:, None, :] - bins[None]) ** 2).sum(-1)
    smooth = np.exp(-distance2 / (2 * SOFT_SIGMA**2)) @ p
    return smooth / smooth.sum()


def _nearest_bin(cells: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Index of the nearest bin centre for each cell, by |c|^2 - 2 c.b + |b|^2 in blocks of cells
    (the full difference array is 65536 x Q x 2: 1.2 s here against 0.05 s); exact, since
    the coordinates are whole numbers, so ties break as a direct comparison's would."""
    centres = bins.astype(np.float64)
    distance2 = (cells**2).sum(1)[:, None] - 2 * cells @ centres.T + (centres**2).sum(1)[None]
    return np.argmin(distance2, axis=1)


def rebalancing_weights(prior: np.ndarray, mix: float) -> np.ndarray:
    """Per-bin loss weights w ~ 1 / ((1 - mix) * prior + mix / Q), normalised so the
    expected weight is 1; mix = 1 gives uniform weights (no rebalancing), Zhang et al. use 0.5."""
    weights = 1.0 / ((1 - mix) * prior + mix / len(prior))
    weights /= np.sum(prior * weights)
    return weights.astype(np.float32)


def prior_correction(prior: np.ndarray, strength: float) -> np.ndarray:
    """Logit offsets -strength * log(prior): rebalancing at decoding time.

    A model trained without rebalancing predicts well but leans to the common,
    dull colours; dividing its distribution by prior^strength before decoding
    (the logit adjustment of Menon et al. 2021) brings back the rarer, vivid
    ones without the accuracy that rebalanced training costs."""
    return (-strength * np.log(prior + 1e-8)).astype(np.float32)


def prior_logits(prior: np.ndarray) -> np.ndarray:
    """log(prior): logits whose softmax is the prior (the classification head's starting bias).

    A head whose weights are still small then predicts how often each colour occurs, and the
    annealed mean of that is the common, near-neutral colour, where a zero bias (a uniform
    distribution over the sRGB bins, which are not symmetric about gray) decodes to a
    strong pink cast that loses to gray in short runs (docs/decisions/prior-init.md)."""
    return np.log(prior + 1e-8).astype(np.float32)


def make_loss(kind: str, bins: np.ndarray | None = None, weights: np.ndarray | None = None):
    if kind == "mse":
        return mse_loss
    if kind == "l1":
        return l1_loss
    if kind == "classification":
        return ClassificationLoss(bins, weights)
    raise ValueError(f"train.loss must be mse, l1 or classification, got {kind!r}")


def mse_loss(y_true, ab):
    return ops.mean(ops.square(y_true - ab), axis=-1)


def l1_loss(y_true, ab):
    return ops.mean(ops.abs(y_true - ab), axis=-1)


def soft_encoding_table(bins: np.ndarray):
    """The soft target of every integer ab colour, precomputed: (65536, Q) weights over the
    bins (softmax of -d^2 / 2 sigma^2, Zhang et al.) and (65536,) the nearest bin; row
    (a + 128) * 256 + (b + 128). 68 MB of float32, looked up once per pixel and step."""
    grid = np.arange(256, dtype=np.float32) - 128
    ab = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    bins = np.asarray(bins, np.float32)
    # Built in place in one (65536, Q) array (plus one temporary): 137 MB at the peak, not 200.
    soft = ab[:, :1] - bins[:, 0]
    np.square(soft, out=soft)
    along_b = ab[:, 1:] - bins[:, 1]
    soft += np.square(along_b, out=along_b)  # squared distances
    del along_b
    closest = np.argmin(soft, axis=1)  # ties (a colour halfway between bins) go to the first, as ops.argmin
    soft *= -1 / (2 * SOFT_SIGMA**2)
    soft -= soft.max(axis=1, keepdims=True)
    np.exp(soft, out=soft)
    soft /= soft.sum(axis=1, keepdims=True)
    return soft.astype(np.float32, copy=False), closest.astype(np.int32)


class ClassificationLoss:
    """Cross-entropy against soft-encoded true colours, rebalanced per bin.

    The soft targets are looked up, not computed: the (pooled) true ab is rounded to
    an integer (ab are integer bytes in the shards; pooling moves them by < 0.5 unit
    before rounding, against a 5-unit Gaussian) and picks its row of
    `soft_encoding_table`, a contiguous copy per pixel instead of a distance, exp and
    sum over all Q bins. The target is dense, so the gradient with respect to the
    logits is dense too (softmax - target): gathering only the few bins that weigh and
    scattering their gradient back made the loss 3x slower (bench/README.md).
    """

    def __init__(self, bins: np.ndarray, weights: np.ndarray | None):
        weights = weights if weights is not None else np.ones(len(bins), np.float32)
        soft, closest = soft_encoding_table(bins)
        self.soft = ops.convert_to_tensor(soft)
        self.weight_of = ops.convert_to_tensor(np.asarray(weights, np.float32)[closest])
        self.__name__ = "classification"

    def __call__(self, y_true, outputs):
        # The model's [ab, logits], or just the logits (a Keras loss for that output alone).
        logits = outputs[1] if isinstance(outputs, (list, tuple)) else outputs
        logits = ops.cast(logits, "float32")
        factor = y_true.shape[1] // logits.shape[1]
        if factor > 1:  # targets at the logits' resolution, as Zhang et al.
            y_true = ops.average_pool(y_true, pool_size=factor, strides=factor, padding="valid")
        ab = ops.clip(ops.round(ops.cast(y_true, "float32") * AB_SCALE), -128, 127)
        index = ops.cast((ab[..., 0] + 128) * 256 + ab[..., 1] + 128, "int32")  # (...)
        target = ops.take(self.soft, index, axis=0)  # (..., Q)
        # -sum_q t_q log softmax(z)_q = logsumexp(z) - sum_q t_q z_q, as the soft targets sum to 1
        cross_entropy = ops.logsumexp(logits, axis=-1) - ops.sum(target * logits, axis=-1)
        return cross_entropy * ops.take(self.weight_of, index)


@keras.saving.register_keras_serializable(package="colorizer")
class AnnealedMean(keras.layers.Layer):
    """Bin logits -> one ab colour (in model units): the mean of softmax((logits + offsets) / T).

    T = 1 is the plain mean (safe, dull), T -> 0 the mode (vivid, riskier);
    Zhang et al. use 0.38. `offsets` (per bin, default 0) is `prior_correction`.
    """

    def __init__(self, bins, temperature: float, offsets=None, **kwargs):
        super().__init__(**kwargs)
        self.bins_list = [list(map(float, row)) for row in np.asarray(bins)]
        self.offsets_list = [0.0] * len(self.bins_list) if offsets is None else list(map(float, offsets))
        self.temperature = float(temperature)
        self._bins = np.asarray(self.bins_list, np.float32) / AB_SCALE
        self._offsets = np.asarray(self.offsets_list, np.float32)

    def call(self, logits):
        adjusted = ops.cast(logits, "float32") + ops.convert_to_tensor(self._offsets)
        probabilities = ops.softmax(adjusted / self.temperature, axis=-1)
        return ops.einsum("...q,qc->...c", probabilities, ops.convert_to_tensor(self._bins))

    def set_offsets(self, offsets) -> None:
        """Change the prior correction of a trained model (it needs no retraining)."""
        self.offsets_list = list(map(float, offsets))
        self._offsets = np.asarray(self.offsets_list, np.float32)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins_list, "temperature": self.temperature,
                "offsets": self.offsets_list}
