import keras
import numpy as np
import pytest
import tensorflow as tf

from colorizer.model.batchnorm import BatchNormalization


def pair(**kwargs):
    """Keras' layer and ours, built alike with the same non-trivial scale and offset."""
    layers = keras.layers.BatchNormalization(momentum=0.9, **kwargs), BatchNormalization(momentum=0.9, **kwargs)
    for layer in layers:
        layer.build((4, 5, 6, 7))
        if layer.scale:
            layer.gamma.assign(np.linspace(0.5, 2, 7))
        if layer.center:
            layer.beta.assign(np.linspace(-1, 1, 7))
    return layers


def train_call(layer, x):
    # A loss that is not linear in the output: through a normalisation, a per-channel linear
    # one would leave zero gradients for x and gamma, and the comparison would prove nothing.
    weights = tf.constant(np.random.default_rng(7).uniform(0.5, 2, x.shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.square(tf.cast(y, tf.float32)) * weights)
    return y, tape.gradient(loss, [x, *layer.trainable_variables])


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
def test_training_step_is_keras_arithmetic_on_the_fused_kernel(center, scale):
    x = tf.constant(np.random.default_rng(0).normal(2, 3, (4, 5, 6, 7)).astype(np.float32))
    theirs, ours = pair(center=center, scale=scale)
    (y_theirs, g_theirs), (y_ours, g_ours) = train_call(theirs, x), train_call(ours, x)
    np.testing.assert_allclose(y_ours, y_theirs, atol=1e-5)
    for a, b in zip(g_ours, g_theirs, strict=True):
        assert np.abs(b).max() > 1e-2  # real gradients, not zeros
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # The moving averages: batch mean and the biased variance, as Keras (not Bessel's estimate).
    np.testing.assert_allclose(ours.moving_mean, theirs.moving_mean, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, atol=1e-5)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-5)


def test_training_runs_the_fused_kernel():
    layer = BatchNormalization()
    layer.build((2, 3, 3, 4))
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(tf.TensorSpec((2, 3, 3, 4))).graph
    assert any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())


def test_mixed_precision_keeps_float32_statistics():
    x = tf.constant(np.random.default_rng(1).normal(0, 2, (4, 5, 6, 7)).astype(np.float32))
    theirs, ours = (cls(momentum=0.9, dtype="mixed_float16") for cls in (keras.layers.BatchNormalization,
                                                                          BatchNormalization))
    y_theirs, y_ours = theirs(tf.cast(x, tf.float16), training=True), ours(tf.cast(x, tf.float16), training=True)
    assert y_ours.dtype == y_theirs.dtype == tf.float16
    assert ours.moving_variance.dtype == "float32"
    np.testing.assert_allclose(np.asarray(y_ours, np.float32), np.asarray(y_theirs, np.float32), atol=2e-2)
    np.testing.assert_allclose(ours.moving_variance, theirs.moving_variance, rtol=1e-3)


def test_what_the_fused_kernel_cannot_do_takes_keras_path():
    """Statistics synchronised across replicas, and float64 layers: Keras' own arithmetic."""
    for layer in (BatchNormalization(synchronized=True), BatchNormalization(dtype="float64")):
        layer.build((2, 3, 3, 4))
        spec = tf.TensorSpec((2, 3, 3, 4), layer.compute_dtype)
        graph = tf.function(lambda x, layer=layer: layer(x, training=True)).get_concrete_function(spec).graph
        assert not any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())
    x = tf.constant(np.random.default_rng(2).normal(1, 2, (4, 5, 6, 7)))
    theirs, ours = keras.layers.BatchNormalization(dtype="float64"), BatchNormalization(dtype="float64")
    np.testing.assert_allclose(ours(x, training=True), theirs(x, training=True))
