"""Batch normalisation that trains on TensorFlow's fused kernel."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="colorizer")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' layer, except that a training step on the TensorFlow backend runs TensorFlow's
    fused kernel (one op forward and one backward, oneDNN on CPU) instead of Keras' moments
    and elementwise ops: 1.12x the from-scratch network's training rate on a 2-core CPU
    (docs/decisions/compute-cut.md).

    The same arithmetic as Keras: the batch mean and biased variance normalise the batch
    and move the moving averages by `momentum`. Inference, other backends, masks,
    renormalisation, statistics synchronised across replicas and float64 layers take
    Keras' own path."""

    def call(self, inputs, training=None, mask=None):
        fused = (training and self.trainable and mask is None and not self.renorm and not self.synchronized
                 and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.moving_mean.dtype == "float32"
                 and keras.backend.backend() == "tensorflow")
        if not fused:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = inputs if inputs.dtype in (tf.float16, tf.float32) else tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels])
        # Statistics in float32 whatever the input's dtype (as Keras, which upcasts).
        y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon, is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = unbiased * (count - 1) / count  # the kernel returns Bessel's estimate; Keras keeps the biased one
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)
