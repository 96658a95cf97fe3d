"""Colorizing whole photos with a trained model: used by the `colorize` command and the served model.

The model runs at its training size on a stretched copy of the photo's
lightness; the predicted ab is upsampled to the photo's own size and joined
with its full-resolution L, so the output keeps every original detail.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from colorizer.data.lab import AB_SCALE, lab_to_rgb, normalise_l, rgb_to_lab


def colorize_batch(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    """Colorize full-resolution RGB (or gray-as-RGB) uint8 photos; returns RGB uint8 of the same sizes."""
    size = int(model.input_shape[1])
    lab = [rgb_to_lab(photo) for photo in photos]
    small = np.stack([_resize_channel(l[..., 0], size, size) for l in lab])[..., None]
    ab_small = np.asarray(model.predict_on_batch(normalise_l(small))) * AB_SCALE
    results = []
    for full, ab in zip(lab, ab_small):
        height, width = full.shape[:2]
        ab_full = np.stack([_resize_channel(ab[..., c], width, height) for c in range(2)], axis=-1)
        rgb = lab_to_rgb(np.concatenate([full[..., :1], ab_full], axis=-1))
        results.append((rgb * 255.0 + 0.5).astype(np.uint8))
    return results


def _resize_channel(values: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR))
