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

Compute (issue 11; FLOPs per layer: `colorizer.model.flops`). `model.stem`:
`conv` (default) runs the first level at 1/2 resolution (stride-2 conv, conv);
`strided` only its stride-2 conv (one input channel: cheap), so the first 3 x 3 conv
over many channels runs at 1/4 resolution; `space_to_depth` (the "patchify" stem of
ConvNeXt) folds each 4 x 4 pixel block into 16 channels (a reshape, no arithmetic) and
embeds them with a 1 x 1 conv, so no encoder conv runs above 1/4 resolution (colour is
predicted at 1/4 anyway). At width 16 it costs 0.39x the training FLOPs of issue 11's
network (width 24, concat decoder); bench/README.md has its colour. `model.convs:
separable` makes every 3 x 3 conv after the stem depthwise-separable (3 x 3 per channel,
then 1 x 1 across channels).
`model.decoder: lowres` runs the part of each decoder conv that reads the upsampled
coarse features before the upsampling (`_decoder`): 0.84x the training FLOPs at width
24, the same parameters and the same colour on validation, but only 1.03x faster on a
CPU; with width 16 it is the compute cut, 0.39x, and the default (trained for 1.25x the
epochs of issue 11's network, the same colour on validation: bench/README.md).

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
from colorizer.model import losses
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
    initial = losses.prior_logits(prior) if params.model.prior_init else None
    model = build_model(params.model, image_size, bins, offsets, initial, scenes)
    return model, losses.make_loss("classification", bins, weights)


def build_model(config: ModelParams, image_size: int, bins: np.ndarray | None = None,
                offsets: np.ndarray | None = None, initial_logits: np.ndarray | None = None,
                scene_classes: int = 0) -> keras.Model:
    """The training model: L -> ab / 128, or -> [ab / 128, bin logits] when `bins`
    (ab bin centres) asks for the classification head (`offsets`: its decoding's
    prior correction; `initial_logits`: the head's starting bias, per bin, e.g. the
    log of the training colour prior: `model.prior_init`). A hybrid with
    `scene_classes` >= 2 adds a last output, scene-class logits from the global
    vector (Iizuka et al.'s auxiliary classification; only training uses it).

    Colour is predicted at 1/`model.output_stride` of the input resolution and
    upsampled bilinearly (Zhang et al. and Iizuka et al. do the same: chroma needs
    far less resolution than lightness, and the finest decoder levels cost most).
    """
    conv = _conv_block(config.norm, config.convs == "separable")
    width = config.width
    gray = keras.Input((image_size, image_size, 1), name="L")
    features, skips = _encoder(conv, gray, width, config.stem)
    scene_logits = None
    if config.arch == "hybrid":
        scene = _global_branch(conv, features, gray, width, config.backbone)
        features = _fuse(conv, features, scene, width)
        if scene_classes >= 2:
            # The fused vector itself must tell the scenes apart, so the decoder hears "glacier".
            scene_logits = layers.Dense(scene_classes, dtype="float32", name=SCENE_OUTPUT)(scene)
    levels = DOWNSAMPLINGS - int(math.log2(config.output_stride))
    x = _decoder(conv, features, skips if config.skips else [], width, levels, config.decoder == "lowres")
    stride = config.output_stride
    if bins is None:
        # float32 output even under mixed precision: the loss and metrics need it.
        ab = layers.Conv2D(2, 3, padding="same", activation="tanh", dtype="float32",
                           name="ab" if stride == 1 else "ab_low")(x)
        logits = None
    else:
        # A 1x1 conv as a Dense over the channels: the same arithmetic, but its weight gradient is
        # one matmul, where oneDNN's 1x1 conv gradient with a bias was the step's slowest op
        # (1.07x the cut's training rate, 1.02x issue 11's wider network's: bench/README.md).
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


def _conv_block(norm: str, separable: bool = False):
    """conv -> normalisation -> ReLU. `batch` normalises over the batch (running
    statistics at inference), `group` per image (identical in training and
    inference, so short runs and small batches behave), `none` adds a bias.
    `separable`: 3 x 3 convs become depthwise-separable (except `dense=True` ones).
    `linear=True`: the conv alone, for a sum of convs that `conv.finish` normalises
    (`bias=False` on all but one of them: one bias is enough for a sum)."""

    def conv(x, filters: int, name: str, strides: int = 1, kernel: int = 3, dense: bool = False, linear: bool = False,
             bias: bool = True):
        bias = bias and norm == "none"  # a normalisation's offset makes a bias redundant
        if separable and kernel > 1 and not dense:
            x = layers.SeparableConv2D(
                filters, kernel, strides=strides, padding="same", use_bias=bias, name=f"{name}_sepconv"
            )(x)
        else:
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


def _encoder(conv, gray, width: int, stem: str = "conv"):
    """-> (bottleneck at 1/8, skips by level: skips[k] is at 1/2^k resolution, or None)."""
    x, skips = gray, [gray]
    first = 0
    if stem == "space_to_depth":
        x = _space_to_depth(gray, 4)
        # A patch embedding (ConvNeXt's "patchify" stem): each 4 x 4 block's 16 pixels mixed into
        # 2w features by a 1 x 1 conv; the 3 x 3 conv after it sees the neighbouring blocks.
        x = conv(x, width * 2, "enc1a", kernel=1)
        x = conv(x, width * 2, "enc1b")
        skips, first = [gray, None, x], 2
    for level in range(first, DOWNSAMPLINGS):
        filters = width * 2**level
        x = conv(x, filters, f"enc{level}a", strides=2, dense=level == 0)
        if not (level == 0 and stem == "strided"):  # strided: no second conv at 1/2 resolution
            x = conv(x, filters, f"enc{level}b")
        skips.append(x)
    return x, skips[:-1]  # the deepest level is the bottleneck itself, not a skip


def _space_to_depth(x, block: int):
    """(S, S, C) -> (S/block, S/block, block^2 C): each block x block patch becomes one pixel's channels."""
    size, channels = x.shape[1], x.shape[3]
    cells = size // block
    x = layers.Reshape((cells, block, cells, block * channels), name="s2d_split")(x)
    x = layers.Permute((1, 3, 2, 4), name="s2d_permute")(x)
    return layers.Reshape((cells, cells, block * block * channels), name="s2d_merge")(x)


def _global_branch(conv, features, gray, width: int, backbone: str):
    """A vector describing the whole scene (sky? sea? forest?) for the fusion layer."""
    if backbone == "none":
        x = conv(features, width * 8, "global0", strides=2)
        x = conv(x, width * 8, "global1", strides=2)
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    else:
        x = _pretrained_features(gray, backbone)
    return layers.Dense(width * 4, activation="relu", name="global_dense")(x)


def _pretrained_features(gray, backbone: str):
    """ImageNet features of the gray image (repeated to 3 channels), frozen."""
    from colorizer.model.backbones import pretrained

    net, preprocess = pretrained(backbone, gray.shape[1])
    net.trainable = False
    rgb = layers.Concatenate(name="gray_to_rgb")([gray, gray, gray])
    rgb = layers.Rescaling(127.5, offset=127.5, name="to_0_255")(rgb)  # [-1, 1] -> [0, 255]
    return net(preprocess(rgb), training=False)


def _fuse(conv, features, scene, width: int):
    height, breadth = features.shape[1], features.shape[2]
    tiled = layers.RepeatVector(height * breadth, name="fusion_repeat")(scene)
    tiled = layers.Reshape((height, breadth, width * 4), name="fusion_tile")(tiled)
    x = layers.Concatenate(name="fusion_concat")([features, tiled])
    return conv(x, width * 4, "fusion", kernel=1)


def _decoder(conv, x, skips: list, width: int, levels: int, lowres: bool = False):
    """`levels` upsampling steps back from the bottleneck (3 = full resolution).

    Each level convolves [upsampled coarser features, skip] (`concat`, U-Net). `lowres`
    splits that conv by linearity, conv([up(x), skip]) = conv_x(up(x)) + conv_s(skip), and
    runs conv_x before the upsampling, on 1/4 of the pixels: the coarse half is smooth
    after a bilinear upsampling anyway, and at 1/4 resolution it was 2/3 of the
    decoder's input channels."""
    x = conv(x, width * 4, "bottleneck")
    for level in reversed(range(DOWNSAMPLINGS - levels, DOWNSAMPLINGS)):
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
