"""The loss options: shapes, hand-checked values, and one training step each."""

import keras
import numpy as np
import pytest

from keras import ops

from colorizer.data.lab import AB_SCALE
from colorizer.model import losses
from colorizer.model.modelio import load_model
from colorizer.model.network import build_model, inference_model


@pytest.fixture(scope="module")
def bins():
    return losses.ab_bins()


def test_bins_cover_the_srgb_gamut_on_a_10_unit_grid(bins):
    assert 200 < len(bins) < 330  # Zhang et al. count 313 with a slightly different gamut test
    assert np.all(bins % 10 == 0)
    assert [0.0, 0.0] in bins.tolist() and [80.0, 70.0] in bins.tolist()  # gray and sRGB red
    assert [-120.0, 110.0] not in bins.tolist()


def test_rebalancing_weights_favour_rare_colours(bins):
    histogram = np.zeros((256, 256))
    histogram[128, 128] = 1000  # almost everything gray
    histogram[128 + 80, 128 + 70] = 1  # a little red
    prior = losses.colour_prior(histogram, bins)
    gray, red = bins.tolist().index([0.0, 0.0]), bins.tolist().index([80.0, 70.0])
    assert prior[gray] > 100 * prior[red] and prior.sum() == pytest.approx(1.0)
    weights = losses.rebalancing_weights(prior, mix=0.5)
    assert weights[red] > 5 * weights[gray]
    assert np.sum(prior * weights) == pytest.approx(1.0)
    np.testing.assert_allclose(losses.rebalancing_weights(prior, mix=1.0), 1.0, rtol=1e-5)
    offsets = losses.prior_correction(prior, 0.3)
    assert offsets[red] > offsets[gray]  # rare colours get a head start when decoding
    assert not losses.prior_correction(prior, 0.0).any()


def test_classification_loss_prefers_the_right_bin(bins):
    loss = losses.ClassificationLoss(bins, None)
    target = np.zeros((1, 1, 1, 2), np.float32)
    target[..., :] = np.array([30.0, -20.0]) / AB_SCALE
    right = np.zeros((1, 1, 1, len(bins)), np.float32)
    right[..., bins.tolist().index([30.0, -20.0])] = 10.0
    wrong = np.zeros_like(right)
    wrong[..., bins.tolist().index([-30.0, 20.0])] = 10.0
    ab = np.zeros((1, 1, 1, 2), np.float32)  # the decoded ab: not what the loss looks at
    assert float(np.mean(loss(target, [ab, right]))) < float(np.mean(loss(target, [ab, wrong])))


def test_classification_targets_are_pooled_to_the_logits_resolution(bins):
    loss = losses.ClassificationLoss(bins, None)
    target = np.zeros((1, 8, 8, 2), np.float32)
    target[:, :, :4] = np.array([40.0, 0.0]) / AB_SCALE  # left half reddish, right half gray
    logits = np.zeros((1, 2, 2, len(bins)), np.float32)
    assert loss(target, [target, logits]).shape == (1, 2, 2)


def dense_classification_loss(bins: np.ndarray, weights: np.ndarray | None):
    """The oracle: Zhang et al.'s soft encoding computed per pixel and step, a softmax over
    every bin's distance, where ClassificationLoss looks each integer colour's row up."""
    bins_t = ops.convert_to_tensor(bins)
    weights_t = ops.convert_to_tensor(weights if weights is not None else np.ones(len(bins), np.float32))

    def loss(y_true, logits):
        factor = y_true.shape[1] // logits.shape[1]
        if factor > 1:
            y_true = ops.average_pool(y_true, pool_size=factor, strides=factor, padding="valid")
        ab = ops.expand_dims(ops.cast(y_true, "float32") * AB_SCALE, -2)
        distance2 = ops.sum(ops.square(ab - bins_t), axis=-1)
        target = ops.softmax(-distance2 / (2 * losses.SOFT_SIGMA**2), axis=-1)
        cross_entropy = -ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)
        return cross_entropy * ops.take(weights_t, ops.argmin(distance2, axis=-1))

    return loss


def test_table_soft_encoding_matches_the_dense_one(bins):
    """The looked-up targets against the softmax over all bins computed per pixel."""
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 2.0, len(bins)).astype(np.float32)
    table, dense = losses.ClassificationLoss(bins, weights), dense_classification_loss(bins, weights)
    # integer ab (as stored in the shards), and the pooled case (non-integer means, rounded by the table)
    integer = (rng.integers(-110, 110, (2, 8, 8, 2)) / AB_SCALE).astype(np.float32)
    logits = rng.normal(0, 2, (2, 8, 8, len(bins))).astype(np.float32)
    np.testing.assert_allclose(np.asarray(table(integer, logits)), np.asarray(dense(integer, logits)), rtol=1e-5, atol=1e-4)
    # Pooled 4x4 means are rounded to integers (<= 0.5 ab unit); uniform weights, as rebalance 1 (near a
    # bin boundary the rounding may pick the neighbouring bin's weight, as a 0.5-unit colour change would).
    table, dense = losses.ClassificationLoss(bins, None), dense_classification_loss(bins, None)
    pooled_logits = logits[:, :2, :2]
    gap = np.abs(np.asarray(table(integer, pooled_logits)) - np.asarray(dense(integer, pooled_logits)))
    assert gap.max() < 0.3 and gap.mean() < 0.1
    soft, closest = losses.soft_encoding_table(bins)
    assert soft.shape == (65536, len(bins))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    row = (30 + 128) * 256 + (-20 + 128)
    assert bins[closest[row]].tolist() == [30.0, -20.0]


def test_annealed_mean_between_mean_and_mode(bins):
    logits = np.full((1, len(bins)), -5.0, np.float32)
    i, j = bins.tolist().index([40.0, 0.0]), bins.tolist().index([-40.0, 0.0])
    logits[0, i], logits[0, j] = 2.0, 1.0  # two modes, the first more likely
    mode_ish = np.asarray(losses.AnnealedMean(bins, 0.05)(logits))[0] * AB_SCALE
    mean_ish = np.asarray(losses.AnnealedMean(bins, 1.0)(logits))[0] * AB_SCALE
    assert mode_ish[0] == pytest.approx(40.0, abs=0.5)
    assert 0 < mean_ish[0] < mode_ish[0]  # the mean drifts towards gray: the desaturation
    offsets = np.zeros(len(bins), np.float32)
    offsets[j] = 3.0  # a prior correction favouring the second colour flips the choice
    corrected = np.asarray(losses.AnnealedMean(bins, 0.05, offsets)(logits))[0] * AB_SCALE
    assert corrected[0] == pytest.approx(-40.0, abs=0.5)


@pytest.mark.parametrize("kind, stride", [("mse", 1), ("l1", 2), ("classification", 4), ("classification", 1)])
def test_each_loss_trains_a_step_and_saves_an_ab_model(kind, stride, bins, tmp_path, model_config):
    keras.utils.set_random_seed(0)
    config = model_config(width=8, prior_correction=0.2, output_stride=stride)
    head_bins = bins if kind == "classification" else None
    model = build_model(config, 32, head_bins, np.linspace(0, 1, len(bins)) if head_bins is not None else None)
    loss_fn = losses.make_loss(kind, head_bins, None)
    optimizer = keras.optimizers.Adam(1e-2)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    y = np.tile(np.array([0.3, -0.2], np.float32), (4, 32, 32, 1))

    def step():
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss_fn(y, model(x, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))
        return float(value)

    first = step()
    for _ in range(4):
        last = step()
    assert last < first
    path = tmp_path / "m.keras"
    inference_model(model).save(path)
    loaded = load_model(path)
    assert loaded.output_shape == (None, 32, 32, 2)
    expected = model(x, training=False)
    expected = expected[0] if kind == "classification" else expected
    np.testing.assert_allclose(loaded.predict(x, verbose=0), np.asarray(expected), atol=1e-5)


def test_prior_init_makes_an_untrained_model_predict_the_common_colour_and_reloads(bins, tmp_path, model_config):
    """The head's bias starts at log(prior) (`model_and_loss`), so before any training
    the model decodes to the prior's common, near-neutral colour, not the cast that a uniform
    distribution over the (asymmetric) sRGB bins decodes to; and it saves and reloads in safe mode."""
    histogram = np.zeros((256, 256))
    histogram[128, 128], histogram[128 - 10, 128 - 20] = 1000, 300  # mostly gray, some sky blue
    prior = losses.colour_prior(histogram, bins)
    offsets = losses.prior_correction(prior, 0.15)
    config = model_config(width=8, prior_correction=0.15, output_stride=4)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype("float32")

    def untrained_ab(initial_logits):
        keras.utils.set_random_seed(0)
        model = build_model(config, 32, bins, offsets, initial_logits)
        return model, np.asarray(model(x, training=False)[0]) * AB_SCALE

    model, warm = untrained_ab(losses.prior_logits(prior))
    _, cold = untrained_ab(None)
    warm_cast, cold_cast = np.linalg.norm(warm.mean(axis=(0, 1, 2))), np.linalg.norm(cold.mean(axis=(0, 1, 2)))
    assert warm_cast < 5, f"prior init: mean ab {warm.mean(axis=(0, 1, 2))} should be near gray"
    assert cold_cast > 2 * warm_cast, f"zero bias: mean ab {cold.mean(axis=(0, 1, 2))}"
    np.testing.assert_allclose(model.get_layer("ab_logits").bias.numpy(), np.log(prior + 1e-8), rtol=1e-6)

    path = tmp_path / "m.keras"
    inference_model(model).save(path)
    loaded = load_model(path)  # keras.saving.load_model(..., safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), warm / AB_SCALE, atol=1e-5)
