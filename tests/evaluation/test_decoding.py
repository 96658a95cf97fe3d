"""`model.prior_correction: auto`: the rule, and what training does with it."""

from pathlib import Path

import numpy as np
import pytest

from colorizer.data import shards as shard_format
from colorizer.evaluation import decoding
from colorizer.model import losses


def rows(accuracies):
    return [{"prior_correction": strength, "accuracy": accuracy}
            for strength, accuracy in zip(decoding.CANDIDATES, accuracies)]


@pytest.mark.parametrize("accuracies, chosen", [
    ((0.600, 0.602, 0.598, 0.595, 0.591, 0.585, 0.58, 0.57), 0.15),  # within 1 point of the best (0.602)
    ((0.60, 0.58, 0.57, 0.56, 0.55, 0.54, 0.53, 0.52), 0.0),  # every correction costs more: none
    ((0.50, 0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57), 0.4),  # more is better throughout
])
def test_the_strongest_correction_within_the_accuracy_slack(accuracies, chosen):
    assert decoding.choose(rows(accuracies)) == chosen


def test_auto_is_chosen_on_validation_and_saved_with_the_model(train_params, tiny_data, tmp_path):
    import json

    from colorizer.model.modelio import load_model
    from colorizer.training.train import train

    params = train_params({"train": {"epochs": 1}, "model": {"prior_correction": "auto"}})
    shards = Path(tiny_data.paths.shards)
    summary = train(params, shards=shards, root=tmp_path)
    assert summary["prior_correction"] in decoding.CANDIDATES
    assert 0 < summary["val_accuracy_decoded"] <= 1
    assert json.loads(Path(params.paths.train_metrics).read_text())["prior_correction"] == summary["prior_correction"]
    prior = losses.colour_prior(shard_format.read_ab_histogram(shards), losses.ab_bins())
    saved = decoding.decoder_of(load_model(Path(params.paths.model)))
    expected = losses.prior_correction(prior, summary["prior_correction"])
    assert np.allclose(saved.offsets_list, expected, atol=1e-6)  # evaluate and colorize decode with the choice


@pytest.mark.parametrize("stride", [1, 4])
def test_the_frontier_scores_each_correction_as_evaluate_would(tiny_data, stride):
    """One forward pass per batch, re-decoded per candidate, gives what scoring the model
    with that correction set (evaluate's path) gives."""
    import dataclasses

    import keras

    from colorizer.evaluation.evaluate import score_split
    from colorizer.model.network import build_model, inference_model

    shards = Path(tiny_data.paths.shards)
    bins = losses.ab_bins()
    prior = losses.colour_prior(shard_format.read_ab_histogram(shards), bins)
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(tiny_data.model, output_stride=stride)
    model = inference_model(build_model(config, tiny_data.data.image_size, bins, None, losses.prior_logits(prior)))
    rows = decoding.frontier(model, shards, prior, threshold=10, batch_size=8)
    assert [row["prior_correction"] for row in rows] == list(decoding.CANDIDATES)
    assert len({round(row["psnr"], 6) for row in rows}) > 1  # the correction changes the colours
    assert decoding.decoder_of(model).offsets_list == pytest.approx(  # the model keeps the last
        losses.prior_correction(prior, decoding.CANDIDATES[-1]).tolist(), abs=1e-6)
    for row in rows[::3]:
        decoding.set_prior_correction(model, prior, row["prior_correction"])
        scores = score_split(keras.Model(model.inputs, model.outputs), shards, "val", 10, batch_size=8)
        for key in decoding.REPORTED:
            assert row[key] == pytest.approx(scores[key], rel=1e-5, abs=1e-6), key
        # A difference of two PSNRs near 20 dB: near zero, so an absolute tolerance as well.
        assert row["psnr_gain_db"] == pytest.approx(scores["psnr"] - scores["baseline"]["psnr"], rel=1e-5, abs=1e-5)
