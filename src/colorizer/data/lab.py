"""sRGB <-> CIE LAB (D65, 2 degree observer), vectorised in float32 NumPy.

The formulas and constants are those of `skimage.color.rgb2lab`/`lab2rgb` (the
tests check agreement to 1e-3), but this version is several times faster: it
works in float32, linearises 8-bit input through a 256-entry table, and converts
a whole batch of images in one call.

Ranges: L in [0, 100]; a and b within about [-87, 99] and [-108, 95] for sRGB colours.
"""

from __future__ import annotations

import numpy as np

_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=np.float64,
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
# Fold the white point into the matrices, so XYZ comes out already normalised.
_NORM_XYZ_FROM_RGB = (_XYZ_FROM_RGB / _WHITE_D65[:, None]).astype(np.float32)
_RGB_FROM_NORM_XYZ = (_RGB_FROM_XYZ * _WHITE_D65[None, :]).astype(np.float32)

_EPSILON = 0.008856  # (6/29)^3, where the cube root meets its linear segment
_KAPPA = 7.787


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.maximum(c, 0.0)  # out-of-gamut LAB can give tiny negative linear values
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


_LINEAR_LUT = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """RGB (uint8 in 0..255, or float in [0, 1]) of shape (..., 3) -> LAB float32."""
    if rgb.dtype == np.uint8:
        linear = _LINEAR_LUT[rgb]
    else:
        linear = _srgb_to_linear(np.clip(rgb.astype(np.float32), 0.0, 1.0))
    xyz = linear @ _NORM_XYZ_FROM_RGB.T
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), _KAPPA * xyz + 16.0 / 116.0)
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """LAB of shape (..., 3) -> RGB float32 in [0, 1] (out-of-gamut colours clipped)."""
    lab = lab.astype(np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = np.maximum(fy - lab[..., 2] / 200.0, 0.0)  # as skimage: no negative Z
    f = np.stack([fx, fy, fz], axis=-1)
    xyz = np.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / _KAPPA)
    linear = xyz @ _RGB_FROM_NORM_XYZ.T
    return np.clip(_linear_to_srgb(linear), 0.0, 1.0).astype(np.float32)


def gray_to_rgb(lightness: np.ndarray) -> np.ndarray:
    """L of shape (...) -> the neutral gray RGB with that lightness (a = b = 0)."""
    zeros = np.zeros_like(lightness, dtype=np.float32)
    return lab_to_rgb(np.stack([lightness.astype(np.float32), zeros, zeros], axis=-1))


# ---------------------------------------------------------------- model units
# The networks take L scaled to [-1, 1] and predict ab / AB_SCALE, so a tanh output
# covers the whole ab range; these are the only two conversions between the units.
AB_SCALE = 128.0


def normalise_l(lightness):
    """L in [0, 100] -> model input in [-1, 1] (works on NumPy arrays and tensors)."""
    return lightness / 50.0 - 1.0
