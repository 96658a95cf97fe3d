import numpy as np
import pytest

from colorizer.data.lab import rgb_to_lab
from colorizer.prepare.sources import synthetic


def class_lab(label, n=12, size=64):
    return np.stack([rgb_to_lab(synthetic.generate(5, label, i, size)) for i in range(n)])


def test_deterministic_from_seed_class_and_index():
    a = synthetic.generate_jpeg(1, "forest", 3, 64)
    assert a == synthetic.generate_jpeg(1, "forest", 3, 64)
    assert a != synthetic.generate_jpeg(2, "forest", 3, 64)
    assert a != synthetic.generate_jpeg(1, "forest", 4, 64)


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown synthetic class"):
        synthetic.generate(0, "city", 0, 32)


def test_skies_are_blue():
    # The top rows of every class but forest are mostly sky: negative b (blue) on average.
    for label in ("coast", "desert", "glacier", "mountains"):
        sky = class_lab(label)[:, :8]
        assert np.mean(sky[..., 2]) < -5, label


def test_class_colour_statistics_differ_like_real_landscapes():
    bottom = {label: class_lab(label)[:, 40:] for label in synthetic.CLASSES}
    mean = {label: lab.reshape(-1, 3).mean(axis=0) for label, lab in bottom.items()}
    # Desert sand: warm yellow (b strongly positive, a >= 0).
    assert mean["desert"][2] > 25 and mean["desert"][1] > 0
    # Forest: green (a negative, b positive).
    assert mean["forest"][1] < -10 and mean["forest"][2] > 10
    # Glacier ice: the brightest ground, cyan-white (b negative, low chroma).
    assert mean["glacier"][0] > max(mean[k][0] for k in synthetic.CLASSES if k != "glacier")
    assert mean["glacier"][2] < 0 and np.hypot(*mean["glacier"][1:]) < 20
    # Mountains: green meadows and slopes below the snow (a negative).
    assert mean["mountains"][1] < -3


def test_coast_has_blue_water_below_the_horizon():
    middle = class_lab("coast")[:, 36:44]
    assert np.mean(middle[..., 2]) < -5
