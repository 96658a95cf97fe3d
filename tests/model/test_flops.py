"""The analytic FLOP count (colorizer.model.flops) against TensorFlow's profiler."""

import dataclasses

import pytest
from conftest import repo_model

from colorizer.model import losses
from colorizer.model.flops import analytic_flops, profiled_flops
from colorizer.model.network import build_model, inference_model

BASE = repo_model(prior_correction=0.0)  # params.yaml's network


@pytest.fixture(scope="module")
def bins():
    return losses.ab_bins()


@pytest.mark.parametrize("overrides", [
    {},
    {"decoder": "concat"},
    {"arch": "autoencoder", "output_stride": 2, "norm": "none"},
    {"backbone": "none"},  # the hybrid trained from scratch
    {"backbone_role": "global", "backbone_size": 0},  # frozen: its forward pass only
    {"backbone": "efficientnet_lite0", "backbone_role": "encoder", "backbone_tune": 3},
])
def test_analytic_count_matches_the_profiler(overrides, bins):
    config = dataclasses.replace(BASE, **overrides)
    model = build_model(config, 128, bins)
    counted = analytic_flops(model)
    forward = profiled_flops(inference_model(model))
    training = profiled_flops(model, loss=losses.make_loss("classification", bins, None), training=True)
    # The profiler also counts some element-wise work (bias adds, softmax, loss, normalisation): within 5%
    # at the sizes trained (more on toy models, where that work weighs more against the convs).
    assert counted["forward"] == pytest.approx(forward, rel=0.05)
    assert counted["training"] == pytest.approx(training, rel=0.05)
    # Backpropagation costs about twice the forward pass, except through a frozen backbone: none
    # (at 224 px the backbone's forward alone is most of the default's, so its ratio is ~1.3).
    pretrained = config.arch == "hybrid" and config.backbone != "none"
    assert training > (1.1 if pretrained else 2.5) * forward


def test_the_lowres_decoder_convolves_the_coarse_half_before_upsampling(bins):
    """The same kernels' worth of weights as the U-Net conv over [upsampled, skip], with
    the coarse half's conv at the coarser resolution: the decoder's FLOPs fall, the
    parameters don't change."""
    concat = build_model(dataclasses.replace(BASE, decoder="concat"), 64, bins)
    lowres = build_model(dataclasses.replace(BASE, decoder="lowres"), 64, bins)
    assert lowres.get_layer("dec2_coarse_conv").output.shape[1] == 8  # 1/8 of 64
    assert lowres.get_layer("dec2_skip_conv").output.shape[1] == 16
    assert lowres.count_params() == concat.count_params()
    by_layer = analytic_flops(lowres)["by_layer"]
    assert by_layer["dec2_coarse_conv"] + by_layer["dec2_skip_conv"] < 0.6 * analytic_flops(concat)["by_layer"]["dec2_conv"]

