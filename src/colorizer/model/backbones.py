"""ImageNet-pretrained Keras Applications as the hybrid's global branch (`model.backbone`).

The weights download once from the Keras/Google storage into ~/.keras; offline,
building fails with a message saying how to proceed. Each entry's input
preprocessing is built from plain layers (no Lambda), so the saved model still
loads in Keras safe mode.
"""

from __future__ import annotations

import keras
from keras import layers


def pretrained(name: str, image_size: int, weights: str | None = "imagenet"):
    """(frozen feature extractor with global average pooling, preprocessing callable).

    The preprocessing takes the gray image repeated to RGB in [0, 255].
    """
    builders = {
        "mobilenet_v2": (keras.applications.MobileNetV2, _to_unit_range),
        "efficientnet_b0": (keras.applications.EfficientNetB0, lambda x: x),  # rescales internally
        "resnet50": (keras.applications.ResNet50, _caffe_means),
    }
    if name not in builders:
        raise ValueError(f"model.backbone: unknown backbone {name!r}; known: none, {', '.join(builders)}")
    build, preprocess = builders[name]
    try:
        net = build(include_top=False, weights=weights, input_shape=(image_size, image_size, 3), pooling="avg")
    except Exception as err:  # URLError, HTTP errors, corrupt cache
        raise RuntimeError(
            f"model.backbone: could not load ImageNet weights for {name} ({type(err).__name__}: {err}). "
            "They download once into ~/.keras/models; offline, copy that file there from a machine with "
            "internet access, or train the global branch from scratch with model.backbone: none."
        ) from None
    return net, preprocess


def _to_unit_range(rgb):
    return layers.Rescaling(1 / 127.5, offset=-1.0, name="backbone_preprocess")(rgb)


def _caffe_means(rgb):
    # ResNet50 expects BGR minus the ImageNet means; the gray image is the same in every channel.
    return layers.Normalization(mean=[103.939, 116.779, 123.68], variance=[1.0, 1.0, 1.0], name="backbone_preprocess")(
        rgb
    )
