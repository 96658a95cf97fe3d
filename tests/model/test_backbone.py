"""The pretrained backbone: its weights read safely from the installed package, the conversion
proven by ImageNet classification, and the hybrid built on it offline."""

from __future__ import annotations

import pickle
import socket
import struct
import sys

import numpy as np
import pytest
from PIL import Image

from colorizer.data.lab import rgb_to_lab
from colorizer.model import efficientnet_lite
from colorizer.model.state_dict import MAGIC_NUMBER, PROTOCOL_VERSION, BadStateDict, UnsafePickle, read_state_dict


@pytest.fixture(scope="module")
def state():
    return read_state_dict(efficientnet_lite.weights_path())


def test_the_packaged_file_is_the_state_dict_of_efficientnet_lite0(state):
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == np.float32
    assert state["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.bias"].shape == (1000,)
    assert sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked")) == 4_694_024  # with the batch norms' statistics
    assert all(np.isfinite(v).all() for v in state.values())


def legacy_file(path, payload: bytes, header: bytes | None = None) -> None:
    """A legacy .pth layout around `payload` (the pickled object): magic, protocol, system info, payload, keys."""
    header = header if header is not None else pickle.dumps(MAGIC_NUMBER, protocol=2)
    path.write_bytes(header + pickle.dumps(PROTOCOL_VERSION, protocol=2) + pickle.dumps({"little_endian": True}, protocol=2)
                     + payload + pickle.dumps([], protocol=2))


class RunsACommand:
    """Unpickles to os.system(command): what a hostile .pth does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


@pytest.mark.parametrize("where", ["state dict", "header"])
def test_a_pickle_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path, where):
    marker = tmp_path / "ran"
    hostile = pickle.dumps(RunsACommand(f"touch {marker}"), protocol=2)
    assert b"system" in hostile
    path = tmp_path / "evil.pth"
    legacy_file(path, hostile) if where == "state dict" else legacy_file(path, b"", header=hostile)
    with pytest.raises(UnsafePickle, match=r"evil\.pth.*(posix|os)\.system"):
        read_state_dict(path)
    assert not marker.exists()


def test_globals_beyond_a_state_dict_are_refused_by_name(tmp_path):
    path = tmp_path / "eval.pth"
    legacy_file(path, pickle.dumps(eval, protocol=2))  # a bare global is enough to be refused
    with pytest.raises(UnsafePickle, match=r"__builtin__\.eval"):  # protocol 2 names Python 2's module
        read_state_dict(path)


def write_legacy(path, tensors: dict[str, tuple[np.ndarray, int, tuple, tuple]], monkeypatch, count_of=None) -> None:
    """A legacy .pth as torch.save writes one, without torch: {name: (storage, offset, size, stride)}.
    A stand-in `torch` module lets pickle name torch.FloatStorage and torch._utils._rebuild_tensor_v2."""
    import collections
    import io
    import types

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called when writing")

    FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
    FloatStorage.__qualname__, _rebuild_tensor_v2.__qualname__ = "FloatStorage", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    storages = {}

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, np.ndarray):
                key = str(id(obj))
                storages[key] = obj
                return ("storage", FloatStorage, key, "cpu", obj.size, None)
            return None

    body = io.BytesIO()
    Writer(body, protocol=2).dump(collections.OrderedDict(
        (name, Tensor(*spec)) for name, spec in tensors.items()))
    data = bytearray(pickle.dumps(MAGIC_NUMBER, protocol=2) + pickle.dumps(PROTOCOL_VERSION, protocol=2)
                     + pickle.dumps({"little_endian": True}, protocol=2) + body.getvalue()
                     + pickle.dumps(list(storages), protocol=2))
    for key, array in storages.items():
        data += struct.pack("<q", count_of(array.size) if count_of else array.size) + array.astype("<f4").tobytes()
    path.write_bytes(bytes(data))


def test_tensors_are_read_as_torch_indexes_them(tmp_path, monkeypatch):
    """A view with an offset and permuted strides (as the converted kernels are stored) reads as
    storage[offset + sum(index * stride)]."""
    storage = np.arange(30, dtype=np.float32)
    path = tmp_path / "views.pth"
    write_legacy(path, {"plain": (storage, 0, (5, 6), (6, 1)), "transposed": (storage, 0, (6, 5), (1, 6)),
                        "offset": (storage, 7, (2, 3), (3, 1)), "scalar": (storage, 29, (), ())}, monkeypatch)
    read = read_state_dict(path)
    np.testing.assert_array_equal(read["plain"], storage.reshape(5, 6))
    np.testing.assert_array_equal(read["transposed"], storage.reshape(5, 6).T)
    np.testing.assert_array_equal(read["offset"], storage[7:13].reshape(2, 3))
    assert read["scalar"].shape == () and read["scalar"] == 29
    outside = tmp_path / "outside.pth"
    write_legacy(outside, {"beyond": (storage, 25, (2, 3), (3, 1))}, monkeypatch)
    with pytest.raises(BadStateDict, match="outside.pth: tensor beyond reaches outside its storage"):
        read_state_dict(outside)


def test_truncated_or_foreign_files_are_bad_not_tracebacks(tmp_path, monkeypatch):
    real = efficientnet_lite.weights_path().read_bytes()
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(real[: len(real) // 2])
    with pytest.raises(BadStateDict, match="cut.pth: truncated"):
        read_state_dict(truncated)
    foreign = tmp_path / "zip.pth"
    foreign.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(BadStateDict, match="zip.pth: not a readable PyTorch state dict"):
        read_state_dict(foreign)
    miscounted = tmp_path / "count.pth"
    write_legacy(miscounted, {"w": (np.zeros(4, np.float32), 0, (4,), (1,))}, monkeypatch, count_of=lambda n: n + 1)
    with pytest.raises(BadStateDict, match="count.pth: truncated or inconsistent storage"):
        read_state_dict(miscounted)


# scikit-image's colour photos whose ImageNet class is known: (loader, classes the top-5 must hold one of,
# classes the top-1 must be among, or None).
PHOTOS = {
    "chelsea": ("chelsea", {281}, {281, 282, 285}),  # tabby; top-1 a cat (tabby, tiger cat, Egyptian cat)
    "coffee": ("coffee", {967, 968, 504}, {967, 968, 504}),  # espresso, cup, coffee mug
    "rocket": ("rocket", {657, 744, 812}, None),  # missile, projectile, space shuttle (top-1: drilling platform)
    "motorcycle": ("stereo_motorcycle", {665, 670}, {665, 670}),  # moped, motor scooter
}


def photo(name: str) -> np.ndarray:
    from skimage import data

    loaded = getattr(data, PHOTOS[name][0])()
    rgb = loaded[0] if isinstance(loaded, tuple) else loaded  # stereo_motorcycle: (left, right, disparity)
    return np.asarray(Image.fromarray(rgb[..., :3]).resize((224, 224), Image.BILINEAR))


@pytest.fixture(scope="module")
def classifier(state):
    model = efficientnet_lite.build(224, include_top=True)
    efficientnet_lite.load_imagenet_weights(model, state)
    return model


@pytest.mark.parametrize("name", sorted(PHOTOS))
@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
def test_the_converted_network_classifies_imagenet_photos(classifier, name, gray):
    """The mapping is right only if the network still knows what it sees: the photo's class in
    its top 5, in colour and as the hybrid sees a photo (L repeated to three channels)."""
    rgb = photo(name).astype(np.float32)
    if gray:
        rgb = np.repeat(rgb_to_lab(rgb.astype(np.uint8))[..., :1] * 2.55, 3, axis=-1)
    logits = classifier.predict(((rgb - efficientnet_lite.INPUT_MEAN) / efficientnet_lite.INPUT_STD)[None], verbose=0)[0]
    top5 = set(np.argsort(-logits)[:5].tolist())
    _, expected, first = PHOTOS[name]
    assert top5 & expected, f"{name}: top-5 {sorted(top5)} holds none of {sorted(expected)}"
    if first:
        assert int(np.argmax(logits)) in first


def test_a_different_weights_file_is_refused(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(efficientnet_lite.MissingWeights, match="efficientnet-lite0-57934424.pth has SHA-256"):
        efficientnet_lite.checked_state_dict()


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(efficientnet_lite, "PACKAGE", "no_such_weights_package")
    with pytest.raises(efficientnet_lite.MissingWeights, match="make install"):
        efficientnet_lite.weights_path()


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a socket fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the backbone tried to use the network")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("variant", [{}, {"backbone_role": "encoder"}, {"backbone_size": 64, "backbone_tune": 2}],
                         ids=["global", "encoder", "resized-tuned"])
def test_the_pretrained_hybrid_builds_offline_and_reloads_in_safe_mode(no_network, model_config, variant, tmp_path):
    from colorizer.model import losses
    from colorizer.model.modelio import load_model
    from colorizer.model.network import build_model, inference_model

    config = model_config(width=8, backbone="efficientnet_lite0", **variant)
    model = build_model(config, 32, losses.ab_bins())
    backbone = model.get_layer("efficientnet_lite0")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    ab = np.asarray(inference_model(model)(x, training=False))
    assert ab.shape == (2, 32, 32, 2) and np.isfinite(ab).all()
    # The backbone holds ImageNet's weights, not an initialiser's.
    np.testing.assert_allclose(backbone.get_layer("head_conv").kernel.numpy()[0, 0, :3, 0],
                               _folded_head(0)[:3], rtol=1e-5)
    path = tmp_path / "m.keras"
    inference_model(model).save(path)
    np.testing.assert_allclose(load_model(path).predict(x, verbose=0), ab, atol=1e-5)


def _folded_head(out_channel: int) -> np.ndarray:
    state = read_state_dict(efficientnet_lite.weights_path())
    scale = state["_bn1.weight"] / np.sqrt(state["_bn1.running_var"] + efficientnet_lite.BN_EPSILON)
    return state["_conv_head.weight"][out_channel, :, 0, 0] * scale[out_channel]


def test_only_the_tuned_blocks_and_the_head_train(model_config):
    from colorizer.model import backbones
    from colorizer.model.network import build_model

    frozen = build_model(model_config(width=8, backbone="efficientnet_lite0"), 32)
    assert backbones.trainable_backbone_variables(frozen) == []
    tuned = build_model(model_config(width=8, backbone="efficientnet_lite0", backbone_tune=2), 32)
    names = {v.path.split("/")[-2] for v in backbones.trainable_backbone_variables(tuned)}
    assert names == {"blocks_14_expand_conv", "blocks_14_depthwise_conv", "blocks_14_project_conv",
                     "blocks_15_expand_conv", "blocks_15_depthwise_conv", "blocks_15_project_conv", "head_conv"}
