"""Each metric on hand-computed cases."""

import keras
import numpy as np
import pytest

from colorizer.data.lab import AB_SCALE, lab_to_rgb
from colorizer.evaluation.metrics import ColorMetrics, Totals, ab_accuracy, ab_mse, psnr


def lab_image(ab_values, lightness=50.0):
    """A 1 x N image whose pixels have the given ab."""
    ab = np.asarray(ab_values, np.float32).reshape(1, -1, 2)
    return np.concatenate([np.full((*ab.shape[:2], 1), lightness, np.float32), ab], axis=-1)


def totals(truth, prediction, threshold=10.0):
    t = Totals(threshold)
    t.add(Totals.of_image(threshold, truth, prediction, lab_to_rgb(truth)))
    return t.summary()


def test_accuracy_counts_pixels_within_threshold_euclidean():
    truth = lab_image([[0, 0]] * 4)
    # distances 0, 5, 10 (3-4-5 triangle x2), 10.5
    prediction = np.array([[0, 0], [3, 4], [6, 8], [10.5, 0]], np.float32).reshape(1, 4, 2)
    result = totals(truth, prediction)
    assert result["accuracy"] == pytest.approx(3 / 4)  # within 10 inclusive
    assert result["acc@5"] == pytest.approx(2 / 4)


def test_auc_is_mean_share_within_integer_thresholds():
    truth = lab_image([[0, 0], [0, 0]])
    prediction = np.array([[0, 0], [0, 30.5]], np.float32).reshape(1, 2, 2)
    # pixel 1 is within every t in 0..150 (151 thresholds); pixel 2 from t=31 on (120 thresholds)
    expected = (151 + 120) / (2 * 151)
    assert totals(truth, prediction)["auc"] == pytest.approx(expected)


def test_distance_beyond_150_never_counts():
    truth = lab_image([[0, 0]])
    prediction = np.array([[-120.0, 120.0]], np.float32).reshape(1, 1, 2)  # 169.7 away
    result = totals(truth, prediction)
    assert result["auc"] == 0.0 and result["accuracy"] == 0.0


def test_mse_is_in_model_units():
    truth = lab_image([[0, 0], [10, -20]])
    prediction = np.array([[AB_SCALE, 0], [10, -20]], np.float32).reshape(1, 2, 2)
    # one value off by exactly 1 model unit, out of 4 values
    assert totals(truth, prediction)["mse"] == pytest.approx(0.25)


def test_psnr_hand_computed():
    a = np.zeros((2, 2, 3), np.float32)
    b = a.copy()
    b[0, 0, 0] = 0.5  # mse = 0.25 / 12
    assert psnr(a, b) == pytest.approx(10 * np.log10(12 / 0.25))
    assert psnr(a, a) == 100.0


def test_gray_baseline_and_per_class():
    truth = np.stack([lab_image([[20, 0]] * 3), lab_image([[0, 0]] * 3)])
    scores = ColorMetrics(10.0, ["sea", "snow"])
    perfect = truth[..., 1:].copy()
    scores.add_batch(truth, perfect, np.array([0, 1]))
    result = scores.summary()
    assert result["accuracy"] == 1.0 and result["mse"] == 0.0 and result["psnr"] == 100.0
    # gray is exactly right on the colourless image, 20 units off on the coloured one
    assert result["baseline"]["accuracy"] == pytest.approx(0.5)
    assert result["per_class"]["snow"]["baseline"]["accuracy"] == 1.0
    assert result["per_class"]["sea"]["baseline"]["accuracy"] == 0.0
    assert result["per_class"]["sea"]["images"] == 1


def test_keras_metrics_agree_with_numpy():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-60, 60, (3, 4, 4, 2)).astype(np.float32)
    prediction = truth + rng.normal(0, 8, truth.shape).astype(np.float32)
    accuracy, mse = ab_accuracy(10.0), ab_mse()
    accuracy.update_state(truth / AB_SCALE, prediction / AB_SCALE)
    mse.update_state(truth / AB_SCALE, prediction / AB_SCALE)
    distance = np.linalg.norm(truth - prediction, axis=-1)
    assert float(accuracy.result()) == pytest.approx(np.mean(distance <= 10), abs=1e-6)
    assert float(mse.result()) == pytest.approx(np.mean(((truth - prediction) / AB_SCALE) ** 2), rel=1e-5)
    assert isinstance(accuracy, keras.metrics.Metric)


def test_end_of_run_summary_puts_model_next_to_gray():
    from colorizer.evaluation.summary import summary_lines

    scores = {"mse": 0.01, "accuracy": 0.41, "acc@5": 0.14, "auc": 0.9, "psnr": 22.5, "colorfulness": 20.0,
              "colorfulness_truth": 30.0}
    gray = {"mse": 0.04, "accuracy": 0.12, "acc@5": 0.02, "auc": 0.79, "psnr": 17.1, "colorfulness": 0.0}
    result = {**scores, "images": 100, "threshold": 10.0, "baseline": gray,
              "per_class": {"sea": {**scores, "baseline": gray}}}
    lines = summary_lines(result)
    assert lines[1].split()[-2:] == ["0.410", "0.120"]
    assert "PSNR (dB)" in lines[4] and lines[4].split()[-2:] == ["22.50", "17.10"]
    assert lines[6].startswith("colorfulness (truth 30.0)") and lines[6].split()[-2:] == ["20.0", "0.0"]
    assert lines[-1] == "accuracy per class: sea 0.41 (gray 0.12)"


def test_colorfulness_hand_computed():
    from colorizer.evaluation.metrics import colorfulness

    gray = np.full((4, 4, 3), 0.5, np.float32)
    assert colorfulness(gray) == 0.0
    red = np.zeros((2, 2, 3), np.float32)
    red[..., 0] = 1.0  # rg = 255, yb = 127.5 everywhere; no spread
    assert colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    half = np.zeros((1, 2, 3), np.float32)
    half[0, 0, 0] = 1.0  # rg: 255 and 0 (std 127.5, mean 127.5); yb: 127.5 and 0 (std 63.75, mean 63.75)
    assert colorfulness(half) == pytest.approx(np.hypot(127.5, 63.75) * 1.3)


def test_colorfulness_ratio_and_colour_cast():
    truth = np.stack([lab_image([[40, 20], [-30, 10]])])
    sepia = np.full((1, 1, 2, 2), [10.0, 25.0], np.float32)  # every pixel brownish-yellow
    scores = ColorMetrics(10.0, ["x"])
    scores.add_batch(truth, sepia, np.array([0]))
    result = scores.summary()
    assert result["bias_a"] == pytest.approx(np.mean([10 - 40, 10 + 30]))
    assert result["bias_b"] == pytest.approx(np.mean([25 - 20, 25 - 10]))
    assert 0 < result["colorfulness"] < result["colorfulness_truth"]
    assert result["colorfulness_ratio"] == pytest.approx(result["colorfulness"] / result["colorfulness_truth"])
    assert result["baseline"]["colorfulness"] == pytest.approx(0.0, abs=0.01)  # gray, up to float rounding
