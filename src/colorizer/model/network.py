"""The colorization networks, in backend-agnostic Keras 3 (keras.layers only).

`hybrid` (default): a convolutional autoencoder whose bottleneck is fused with a
global scene vector from a CNN branch, after Iizuka et al. 2016 and Baldassarre
et al. 2017 ("Deep Koalarization"):

    L (S x S x 1)
      encoder: 3 x [stride-2 conv, conv]  ->  S/8 x S/8 x 4w      (local features)
      global branch: 2 more stride-2 convs, global average pool, dense -> 4w
                     (from scratch on the encoder's features, as Iizuka et al.;
                      or a pretrained Keras Applications CNN on the gray image)
      fusion: the global vector is repeated at every bottleneck position,
              concatenated, and mixed by a 1x1 conv
      decoder: 3 x [upsample x2, conv] (+ U-Net skips from the encoder) -> S x S x 2, tanh
               (default: only the levels down to 1/4 resolution, see output_stride)
    ab / 128

With `train.scene_weight` > 0, a dense layer on the global vector also predicts the
photo's scene class (training only: Iizuka et al.'s auxiliary classification loss,
so that the vector the decoder is given has to know "this is a glacier").

`autoencoder`: the same encoder and decoder without the global branch, the
plain convolutional autoencoder of Nihalaani et al. 2021: the baseline.

Compute (FLOPs per layer: `colorizer.model.flops`): the first encoder level runs at 1/2
resolution, colour is predicted at 1/`model.output_stride`, and `model.decoder: lowres`
runs the part of each decoder conv that reads the upsampled coarse features before the
upsampling (`_decoder`): the same parameters on a quarter of the pixels.

With `train.loss: classification` the head predicts logits over ab bins instead,
decoded to ab by the annealed mean (losses.py); the training model then outputs
[ab, logits] and `inference_model` keeps just the ab.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from colorizer.core.config import ModelParams, Params
from colorizer.model import backbones, losses
from colorizer.model.batchnorm import BatchNormalization
from colorizer.model.losses import AnnealedMean

DOWNSAMPLINGS = 3  # encoder stride 8: data.image_size must be a multiple of 8
SCENE_OUTPUT = "scene"  # the layer (and output) name of the scene-class logits


def model_and_loss(params: Params, image_size: int, ab_histogram: np.ndarray, scene_classes: int = 0):
    """The training model and its colour loss for `params`, as `train` builds them; `ab_histogram`
    is the training split's colour counts (the shards' `ab_histogram.npy`). With
    `train.scene_weight` > 0, a hybrid with `scene_classes` >= 2 also outputs scene logits
    (`split_scene`)."""
    scenes = scene_classes if params.train.scene_weight > 0 and params.model.arch == "hybrid" else 0
    if params.train.loss != "classification":
        return build_model(params.model, image_size, scene_classes=scenes), losses.make_loss(params.train.loss)
    bins = losses.ab_bins()
    prior = losses.colour_prior(ab_histogram, bins)
    weights = losses.rebalancing_weights(prior, params.train.rebalance)
    # "auto" is chosen on validation once training ends (evaluation/decoding.py).
    offsets = losses.prior_correction(prior, params.model.initial_prior_correction)
    # An untrained head's near-uniform distribution over the (asymmetric) sRGB bins decodes to a
    # strong cast; starting from the prior, it decodes to the prior's common, near-neutral colour.
    model = build_model(params.model, image_size, bins, offsets, losses.prior_logits(prior), scenes)
    return model, losses.make_loss("classification", bins, weights)


def build_model(config: ModelParams, image_size: int, bins: np.ndarray | None = None,
                offsets: np.ndarray | None = None, initial_logits: np.ndarray | None = None,
                scene_classes: int = 0) -> keras.Model:
    """The training model: L -> ab / 128, or -> [ab / 128, bin logits] when `bins`
    (ab bin centres) asks for the classification head (`offsets`: its decoding's
    prior correction; `initial_logits`: the head's starting bias, per bin, the log of
    the training colour prior in `model_and_loss`; None = zeros). A hybrid with
    `scene_classes` >= 2 adds a last output, scene-class logits from the global
    vector (Iizuka et al.'s auxiliary classification; only training uses it).

    Colour is predicted at 1/`model.output_stride` of the input resolution and
    upsampled bilinearly (Zhang et al. and Iizuka et al. do the same: chroma needs
    far less resolution than lightness, and the finest decoder levels cost most).
    """
    conv = _conv_block(config.norm)
    width = config.width
    gray = keras.Input((image_size, image_size, 1), name="L")
    features, skips, scene = _encoder_and_scene(conv, gray, config)
    scene_logits = None
    if scene is not None:
        features = _fuse(conv, features, scene, _bottleneck_filters(width, len(skips)))
        if scene_classes >= 2:
            # The fused vector itself must tell the scenes apart, so the decoder hears "glacier".
            scene_logits = layers.Dense(scene_classes, dtype="float32", name=SCENE_OUTPUT)(scene)
    depth = len(skips)  # the bottleneck is at 1/2^depth
    levels = depth - int(math.log2(config.output_stride))
    x = _decoder(conv, features, skips if config.skips else [], width, depth, levels, config.decoder == "lowres")
    stride = config.output_stride
    if bins is None:
        # float32 output even under mixed precision: the loss and metrics need it.
        ab = layers.Conv2D(2, 3, padding="same", activation="tanh", dtype="float32",
                           name="ab" if stride == 1 else "ab_low")(x)
        logits = None
    else:
        # A 1x1 conv as a Dense over the channels: the same arithmetic, but its weight gradient is
        # one matmul, where oneDNN's 1x1 conv gradient with a bias was the step's slowest op
        # (1.07x the from-scratch network's training rate: docs/decisions/compute-cut.md).
        head = layers.Dense(len(bins), dtype="float32", name="ab_logits")
        logits = head(x)
        if initial_logits is not None:
            # Set once, not as an initializer: the saved config stays a plain `zeros` bias.
            head.bias.assign(np.asarray(initial_logits, np.float32))
        ab = AnnealedMean(bins, config.temperature, offsets, dtype="float32",
                          name="ab" if stride == 1 else "ab_low")(logits)
    if stride > 1:
        ab = layers.UpSampling2D(stride, interpolation="bilinear", dtype="float32", name="ab")(ab)
    outputs = [ab] + ([logits] if logits is not None else []) + ([scene_logits] if scene_logits is not None else [])
    return keras.Model(gray, outputs[0] if len(outputs) == 1 else outputs, name=f"colorizer_{config.arch}")


def inference_model(model: keras.Model) -> keras.Model:
    """L -> ab / 128, sharing the training model's weights (what gets saved and served)."""
    return model if len(model.outputs) == 1 else keras.Model(model.input, model.outputs[0], name=model.name)


def split_scene(model: keras.Model, output):
    """(the colour output the loss takes, scene logits or None) of a training model's output."""
    if model.output_names[-1] != SCENE_OUTPUT:
        return output, None
    colour = output[:-1]
    return (colour[0] if len(colour) == 1 else colour), output[-1]


def ab_of(output):
    """The ab prediction in a model's output: a classification model returns [ab, logits]."""
    return output[0] if isinstance(output, (list, tuple)) else output


def _conv_block(norm: str):
    """conv -> normalisation -> ReLU. `batch` normalises over the batch (running
    statistics at inference), `group` per image (identical in training and
    inference, so short runs and small batches behave), `none` adds a bias.
    `linear=True`: the conv alone, for a sum of convs that `conv.finish` normalises
    (`bias=False` on all but one of them: one bias is enough for a sum)."""

    def conv(x, filters: int, name: str, strides: int = 1, kernel: int = 3, linear: bool = False, bias: bool = True):
        bias = bias and norm == "none"  # a normalisation's offset makes a bias redundant
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=bias, name=f"{name}_conv")(x)
        return x if linear else finish(x, filters, name)

    def finish(x, filters: int, name: str):
        if norm == "batch":
            x = BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        elif norm == "group":
            x = layers.GroupNormalization(groups=math.gcd(filters, 8), name=f"{name}_gn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    conv.finish = finish
    return conv


def _encoder(conv, gray, width: int):
    """-> (bottleneck at 1/8, skips by level: skips[k] is at 1/2^k resolution)."""
    x, skips = gray, [gray]
    for level in range(DOWNSAMPLINGS):
        filters = width * 2**level
        x = conv(x, filters, f"enc{level}a", strides=2)
        x = conv(x, filters, f"enc{level}b")
        skips.append(x)
    return x, skips[:-1]  # the deepest level is the bottleneck itself, not a skip


def _encoder_and_scene(conv, gray, config: ModelParams):
    """(bottleneck, skips by level, scene vector or None). The hybrid's scene vector comes from
    two more convs on its own encoder's features (`backbone: none`, as Iizuka et al.) or from
    the pretrained backbone's pooled head (Baldassarre et al.). With `backbone_role: encoder`
    the backbone's feature maps are the U-Net's encoder too: bottleneck at 1/32."""
    if config.arch != "hybrid":
        return (*_encoder(conv, gray, config.width), None)
    if config.backbone == "none":
        features, skips = _encoder(conv, gray, config.width)
        x = conv(features, config.width * 8, "global0", strides=2)
        x = conv(x, config.width * 8, "global1", strides=2)
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)
        return features, skips, layers.Dense(config.width * 4, activation="relu", name="global_dense")(x)
    size = config.backbone_size or gray.shape[1]
    pyramid, vector = backbones.pretrained_features(gray, config.backbone, size, config.backbone_tune,
                                                    config.backbone_vector)
    if config.backbone_dropout:
        vector = layers.Dropout(config.backbone_dropout, name="backbone_dropout")(vector)
    scene = layers.Dense(config.width * 4, activation="relu", name="global_dense")(vector)
    if config.backbone_role == "encoder":
        pyramid = [_resized(level, gray.shape[1] // 2 ** (k + 1), f"backbone_level{k + 1}")
                   for k, level in enumerate(pyramid)]  # a backbone fed another size: back to the decoder's
        return pyramid[-1], [gray, *pyramid[:-1]], scene
    return (*_encoder(conv, gray, config.width), scene)


def _resized(x, size: int, name: str):
    return x if x.shape[1] == size else layers.Resizing(size, size, interpolation="bilinear", name=name)(x)


def _bottleneck_filters(width: int, depth: int) -> int:
    """Channels at the bottleneck, 1/2^depth: doubling per level from `width` at 1/2 (4w at 1/8)."""
    return width * 2 ** (depth - 1)


def _fuse(conv, features, scene, filters: int):
    """The scene vector repeated at every bottleneck position, concatenated, mixed by a 1x1 conv."""
    height, breadth = features.shape[1], features.shape[2]
    tiled = layers.RepeatVector(height * breadth, name="fusion_repeat")(scene)
    tiled = layers.Reshape((height, breadth, scene.shape[-1]), name="fusion_tile")(tiled)
    x = layers.Concatenate(name="fusion_concat")([features, tiled])
    return conv(x, filters, "fusion", kernel=1)


def _decoder(conv, x, skips: list, width: int, depth: int, levels: int, lowres: bool = False):
    """`levels` upsampling steps back from the bottleneck at 1/2^depth (`depth` = full resolution);
    skips[k] is at 1/2^k (none: no skips).

    Each level convolves [upsampled coarser features, skip] (`concat`, U-Net). `lowres`
    splits that conv by linearity, conv([up(x), skip]) = conv_x(up(x)) + conv_s(skip), and
    runs conv_x before the upsampling, on 1/4 of the pixels: the coarse half is smooth
    after a bilinear upsampling anyway, and at 1/4 resolution it was 2/3 of the
    decoder's input channels."""
    x = conv(x, _bottleneck_filters(width, depth), "bottleneck")
    for level in reversed(range(depth - levels, depth)):
        filters = max(width * 2**level // 2, 8)
        skip = skips[level] if skips else None
        if lowres:
            x = conv(x, filters, f"dec{level}_coarse", linear=True)
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{level}_up")(x)
            if skip is not None:
                skip = conv(skip, filters, f"dec{level}_skip", linear=True, bias=False)  # the coarse conv's bias serves both
                x = layers.Add(name=f"dec{level}_sum")([x, skip])
            x = conv.finish(x, filters, f"dec{level}")
            continue
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{level}_up")(x)
        if skip is not None:
            x = layers.Concatenate(name=f"dec{level}_skip")([x, skip])
        x = conv(x, filters, f"dec{level}")
    return x
