"""Sample grids: every photo's gray, predicted and true colours in their place."""

import numpy as np

from colorizer.data.lab import lab_to_rgb
from colorizer.evaluation.samples import GAP, HEADER, SampleSet, grid


def sample_set(count: int, size: int = 16) -> SampleSet:
    rng = np.random.default_rng(0)
    lightness = np.full((count, size, size, 1), 60, np.float32)
    ab = np.repeat(rng.uniform(-40, 40, (count, 1, 1, 2)), size, 1).repeat(size, 2).astype(np.float32)
    return SampleSet(lightness, ab, [f"c{i}" for i in range(count)], [f"f{i}" for i in range(count)])


def colour_at(image, x: int, y: int) -> np.ndarray:
    return np.asarray(image, np.int16)[y, x]


def test_eight_photos_are_laid_out_in_two_blocks_close_to_square():
    size, fixed = 16, sample_set(8)
    predicted = fixed.ab * 0.5
    image = grid(fixed, {"predicted": predicted}, title="epoch 3")
    top = 2 * HEADER  # title line + column names
    assert image.size == (2 * 3 * size + GAP, top + 4 * size)
    for i in range(8):
        x0, y = (i // 4) * (3 * size + GAP), top + (i % 4) * size + size - 2  # below the class label
        for column, ab in enumerate((np.zeros(2), predicted[i, 0, 0], fixed.ab[i, 0, 0])):
            expected = np.round(lab_to_rgb(np.array([60.0, *ab], np.float32)) * 255)
            assert np.abs(colour_at(image, x0 + column * size + size // 2, y) - expected).max() <= 1, (i, column)


def test_a_single_photo_is_one_row():
    image = grid(sample_set(1), {"predicted": sample_set(1).ab})
    assert image.size == (3 * 16, HEADER + 16)
