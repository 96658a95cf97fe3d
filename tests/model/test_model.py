import keras
import numpy as np
import pytest

from conftest import repo_model

from colorizer.evaluation.metrics import ab_accuracy
from colorizer.model.modelio import UnsafeModel, load_model
from colorizer.model.network import build_model


def config(**overrides):
    """params.yaml's network at width 8 (fast), with overrides."""
    return repo_model(**{"width": 8, "prior_correction": 0.0, **overrides})


@pytest.mark.parametrize(
    "arch, skips, size, stride, norm, decoder",
    [("hybrid", True, 32, 1, "batch", "lowres"), ("hybrid", False, 40, 2, "group", "lowres"),
     ("hybrid", True, 64, 8, "none", "lowres"), ("autoencoder", True, 32, 4, "batch", "lowres"),
     ("autoencoder", False, 64, 1, "group", "concat"), ("hybrid", True, 32, 4, "batch", "concat")],
)
def test_output_shape_and_range(arch, skips, size, stride, norm, decoder):
    scratch = {"backbone": "none"} if size % 32 else {}  # the pretrained encoder needs a multiple of 32
    model = build_model(config(arch=arch, skips=skips, output_stride=stride, norm=norm, decoder=decoder, **scratch), size)
    out = model.predict(np.random.default_rng(0).uniform(-1, 1, (2, size, size, 1)).astype("float32"), verbose=0)
    assert out.shape == (2, size, size, 2)
    assert out.dtype == np.float32 and np.all(np.abs(out) <= 1)


def test_hybrid_has_a_fused_global_branch():
    hybrid, plain = build_model(config(), 32), build_model(config(arch="autoencoder"), 32)
    names = {layer.name for layer in hybrid.layers}
    assert {"global_dense", "fusion_concat"} <= names
    assert "fusion_concat" not in {layer.name for layer in plain.layers}
    assert hybrid.count_params() > plain.count_params()


@pytest.mark.parametrize("arch", ["hybrid", "autoencoder"])
def test_one_training_step_reduces_loss(arch):
    keras.utils.set_random_seed(0)
    model = build_model(config(arch=arch), 32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=[ab_accuracy(10.0)])
    x = np.random.default_rng(1).uniform(-1, 1, (8, 32, 32, 1)).astype("float32")
    y = np.tile(np.array([0.2, -0.3], np.float32), (8, 32, 32, 1))
    first = model.train_on_batch(x, y, return_dict=True)["loss"]
    for _ in range(5):
        last = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert last < first


@pytest.mark.parametrize("extra", [{}, {"decoder": "concat", "output_stride": 1}, {"norm": "none"}])
def test_saved_model_reloads_in_safe_mode(tmp_path, extra):
    model = build_model(config(**extra), 32)
    path = tmp_path / "m.keras"
    model.save(path)
    again = load_model(path)
    x = np.zeros((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_models_with_embedded_code_are_refused(tmp_path):
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(UnsafeModel, match="Lambda"):
        load_model(path)
    legacy = tmp_path / "old.h5"
    legacy.write_bytes(b"\x89HDF")
    with pytest.raises(UnsafeModel, match="only .keras"):
        load_model(legacy)
    with pytest.raises(FileNotFoundError, match="dvc repro train"):
        load_model(tmp_path / "missing.keras")


@pytest.mark.parametrize("bins", [None, "classification"])
def test_the_scene_head_is_a_last_training_only_output(bins):
    from colorizer.model import losses
    from colorizer.model.network import inference_model, split_scene

    bins = losses.ab_bins() if bins else None
    model = build_model(config(output_stride=4), 32, bins, scene_classes=5)
    x = np.zeros((2, 32, 32, 1), np.float32)
    colour, scene = split_scene(model, model(x))
    assert tuple(scene.shape) == (2, 5)
    assert len(colour) == 2 if bins is not None else tuple(colour.shape) == (2, 32, 32, 2)
    assert len(inference_model(model).outputs) == 1  # what is saved and served: ab alone
    # No head for the autoencoder (no global branch) or with fewer than two classes.
    for plain in (build_model(config(arch="autoencoder"), 32, scene_classes=5), build_model(config(), 32, scene_classes=1)):
        assert split_scene(plain, plain(x))[1] is None


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("stride", [1, 4])
def test_the_lowres_decoder_has_the_concat_decoders_parameters(norm, stride):
    """The same sum of two convs per level, only computed at another resolution (and one bias for the sum)."""
    concat = build_model(config(norm=norm, output_stride=stride, decoder="concat"), 32)
    lowres = build_model(config(norm=norm, output_stride=stride, decoder="lowres"), 32)
    assert lowres.count_params() == concat.count_params()
