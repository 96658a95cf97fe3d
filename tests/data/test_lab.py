import numpy as np
import pytest
from skimage import color

from colorizer.data.lab import gray_to_rgb, lab_to_rgb, rgb_to_lab


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 17)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return np.concatenate([grid, rng.random((2000, 3))]).astype(np.float32)


def test_rgb_to_lab_matches_skimage(rgb):
    np.testing.assert_allclose(rgb_to_lab(rgb), color.rgb2lab(rgb.astype(np.float64)), atol=2e-3)


def test_uint8_lookup_path_matches_float_path(rgb):
    pixels = (rgb * 255).round().astype(np.uint8)
    np.testing.assert_allclose(rgb_to_lab(pixels), rgb_to_lab(pixels / 255.0), atol=1e-3)


def test_lab_to_rgb_matches_skimage(rgb):
    lab = color.rgb2lab(rgb.astype(np.float64))
    np.testing.assert_allclose(lab_to_rgb(lab), np.clip(color.lab2rgb(lab), 0, 1), atol=2e-3)


def test_round_trip_error_bound(rgb):
    assert np.max(np.abs(lab_to_rgb(rgb_to_lab(rgb)) - rgb)) < 1e-3


def test_known_values():
    np.testing.assert_allclose(rgb_to_lab(np.array([1.0, 1.0, 1.0])), [100, 0, 0], atol=1e-2)
    np.testing.assert_allclose(rgb_to_lab(np.array([0.0, 0.0, 0.0])), [0, 0, 0], atol=1e-3)
    red = rgb_to_lab(np.array([1.0, 0.0, 0.0]))
    np.testing.assert_allclose(red, [53.24, 80.09, 67.20], atol=0.05)


def test_gray_has_no_colour():
    rgb = gray_to_rgb(np.array([0.0, 25.0, 50.0, 100.0]))
    assert np.allclose(rgb, rgb[:, :1], atol=1e-4)
