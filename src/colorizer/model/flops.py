"""FLOPs of a Keras model: counted from its layers (analytic), and measured by TensorFlow's profiler.

One multiply-add = 2 FLOPs, as the profiler counts. The analytic count covers the
layers where the arithmetic is (Conv2D, DepthwiseConv2D, Dense)
and leaves out element-wise work (normalisation, activations, upsampling, the
loss), which the profiler does not count either; tests/model/test_flops.py checks
the two against each other.

A training step costs the forward pass plus, for every counted layer with trainable
weights, its gradient with respect to them (as many FLOPs as the forward pass), and the
gradient with respect to its input (the same again) wherever a trainable weight lies
between the model's input and the layer: elsewhere (the first layer on the image, a
frozen pretrained backbone on it) that gradient is never computed.
"""

from __future__ import annotations

import math

import keras

from colorizer.model.network import split_scene


def layer_flops(layer) -> int:
    """Forward FLOPs of one layer for one example (0 for layers without arithmetic worth counting)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = layer.output.shape
        return 2 * out[1] * out[2] * math.prod(layer.kernel_size) * layer.input.shape[-1] * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        out = layer.output.shape
        return 2 * out[1] * out[2] * math.prod(layer.kernel_size) * layer.input.shape[-1] * out[-1]
    if isinstance(layer, keras.layers.Dense):
        return 2 * math.prod(layer.input.shape[1:]) * layer.units
    return 0


def analytic_flops(model: keras.Model) -> dict:
    """{"forward", "training", "by_layer"}: FLOPs per example, counted from the layers."""
    by_layer = {layer.name: layer_flops(layer) for layer in _layers(model)}
    by_layer = {name: flops for name, flops in by_layer.items() if flops}
    forward = sum(by_layer.values())
    trained = {layer.name for layer in _layers(model) if layer.trainable_weights}
    upstream = {layer.name for layer in _layers(model) if not _reads_only_inputs(layer, model)}
    training = sum(flops * (1 + (name in trained) + (name in upstream)) for name, flops in by_layer.items())
    return {"forward": forward, "training": training, "by_layer": by_layer}


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _reads_only_inputs(layer, model) -> bool:
    """Whether nothing trainable lies between the model's input and this layer's input."""
    frontier = list(layer._inbound_nodes[0].parent_nodes) if layer._inbound_nodes else []
    seen = set()
    while frontier:
        node = frontier.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.operation.trainable_weights:
            return False
        frontier.extend(node.parent_nodes)
    return True


def profiled_flops(model: keras.Model, batch_size: int = 1, loss=None, training: bool = False) -> float:
    """FLOPs per example measured by TensorFlow's profiler on the graph of a traced function:
    the forward pass (`training=False`), or a full training step with `loss` (forward,
    loss, gradients; the optimizer update's element-wise FLOPs are not counted)."""
    import tensorflow as tf

    shape = (batch_size, *model.input_shape[1:])
    if training:
        out_shape = (batch_size, *model.input_shape[1:3], 2)

        @tf.function
        def step(x, y):
            with tf.GradientTape(watch_accessed_variables=False) as tape:  # as train's step
                tape.watch([v.value for v in model.trainable_variables])
                value = tf.reduce_mean(loss(y, split_scene(model, model(x, training=True))[0]))
            return tape.gradient(value, model.trainable_variables)

        concrete = step.get_concrete_function(tf.TensorSpec(shape, tf.float32), tf.TensorSpec(out_shape, tf.float32))
    else:
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=concrete.graph, run_meta=tf.compat.v1.RunMetadata(),
                                         cmd="op", options=options)
    return info.total_float_ops / batch_size
