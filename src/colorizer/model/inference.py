"""Colorizing whole photos with a trained model: used by the `colorize` command and the served model.

The model runs at its training size on a stretched copy of the photo's
lightness; the predicted ab is upsampled to the photo's own size and joined
with its full-resolution L, so the output keeps every original detail.

Memory is bounded for large photos (the served model gets them from anyone):
the full-resolution work is done one photo at a time, in float32, in strips of
`STRIP_ROWS` rows, so the temporaries of the LAB conversions never exceed a
strip. A 12 MP photo peaks at about 0.3 GB over the model's own memory (1.5 GB
when whole photos were converted at once).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from colorizer.data.lab import AB_SCALE, lab_to_rgb, normalise_l, rgb_to_lab

# Rows converted at a time: a 4000-pixel-wide strip's LAB temporaries are a few tens of MB.
STRIP_ROWS = 256


def colorize_batch(model, photos: list[np.ndarray]) -> list[np.ndarray]:
    """Colorize full-resolution RGB (or gray-as-RGB) uint8 photos; returns RGB uint8 of the same sizes."""
    size = int(model.input_shape[1])
    small = np.stack([_resize_channel(_lightness(photo), size, size) for photo in photos])[..., None]
    ab_small = np.asarray(model.predict_on_batch(normalise_l(small)), dtype=np.float32) * AB_SCALE
    return [_join(photo, ab) for photo, ab in zip(photos, ab_small)]


def _lightness(photo: np.ndarray) -> np.ndarray:
    """The photo's L channel, (H, W) float32, converted strip by strip."""
    lightness = np.empty(photo.shape[:2], np.float32)
    for top in range(0, photo.shape[0], STRIP_ROWS):
        lightness[top : top + STRIP_ROWS] = rgb_to_lab(photo[top : top + STRIP_ROWS])[..., 0]
    return lightness


def _join(photo: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
    """The photo's own L with the predicted ab upsampled to its size, as RGB uint8."""
    height, width = photo.shape[:2]
    ab_full = [_resize_channel(ab_small[..., c], width, height) for c in range(2)]
    result = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        lab = rgb_to_lab(photo[rows])
        lab[..., 1], lab[..., 2] = ab_full[0][rows], ab_full[1][rows]
        result[rows] = (lab_to_rgb(lab) * 255.0 + 0.5).astype(np.uint8)
    return result


def _resize_channel(values: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR))
