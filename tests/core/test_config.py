import re
from pathlib import Path

import pytest
from conftest import REPO, merge, repo_params_dict

from colorizer.core.config import ParamError, load_params, params_from_dict


def test_repo_params_load_and_validate():
    params = load_params(REPO / "params.yaml")
    assert params.data.image_size == 224
    assert params.model.arch == "hybrid"
    assert params.flat()["train.epochs"] == params.train.epochs


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"lr": 0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"batch_size": -4}}, "train.batch_size"),
        ({"data": {"image_size": 100}}, "data.image_size"),
        ({"data": {"image_size": 16}}, "data.image_size"),
        ({"model": {"arch": "unet"}}, "model.arch"),
        ({"model": {"backbone": "vgg99"}}, "model.backbone"),
        ({"model": {"decoder": "sum"}}, "model.decoder"),
        ({"data": {"source": ""}}, "data.source"),
        ({"train": {"epochs": True}}, "train.epochs"),
        ({"train": {"epochs": 2.5}}, "train.epochs"),
        ({"train": {"flip": "yes"}}, "train.flip"),
        ({"data": {"max_per_class": -1}}, "data.max_per_class"),
        ({"shard": {"num_shards": 0}}, "shard.num_shards"),
        ({"metrics": {"threshold": 0}}, "metrics.threshold"),
        ({"paths": {"model": "models/model.h5"}}, "paths.model"),  # Keras' legacy format: not loaded safely
    ],
)
def test_bad_values_name_their_key(overrides, key):
    with pytest.raises(ParamError, match=rf"\b{key}\b"):
        params_from_dict(merge(repo_params_dict(), overrides))


# Values the validator used to accept that no run survives: each must fail at load,
# naming the key and the allowed range.
@pytest.mark.parametrize(
    "overrides, key, allowed",
    [
        ({"data": {"seed": 2**32}}, "data.seed", "[0, 4294967295]"),
        ({"data": {"seed": -1}}, "data.seed", "[0, 4294967295]"),
        ({"train": {"seed": 2**32}}, "train.seed", "[0, 4294967295]"),
        ({"train": {"seed": -1}}, "train.seed", "[0, 4294967295]"),
        ({"data": {"near_duplicate_bits": -1}}, "data.near_duplicate_bits", "[0, 16]"),
        ({"data": {"near_duplicate_bits": 17}}, "data.near_duplicate_bits", "[0, 16]"),
        ({"data": {"min_colour_spread": -0.5}}, "data.min_colour_spread", "[0, 255]"),
        ({"data": {"min_colour_spread": 256}}, "data.min_colour_spread", "[0, 255]"),
        ({"data": {"image_size": 100_000}}, "data.image_size", "[32, 1024]"),
        ({"train": {"batch_size": 10_000_000}}, "train.batch_size", "[1, 4096]"),
        ({"evaluate": {"batch_size": 10_000_000}}, "evaluate.batch_size", "[1, 4096]"),
        ({"model": {"width": 1_000_000}}, "model.width", "[4, 512]"),
        ({"train": {"epochs": 10**6}}, "train.epochs", "[1, 10000]"),
        ({"train": {"shuffle_buffer": 10**7}}, "train.shuffle_buffer", "[1, 1000000]"),
        ({"train": {"sample_every": 0}}, "train.sample_every", "[1, 10000]"),
        ({"shard": {"num_shards": 5000}}, "shard.num_shards", "[1, 4096]"),
        ({"data": {"max_per_class": 10**8}}, "data.max_per_class", "[1, 10000000]"),
        ({"data": {"synthetic_per_class": 10**7}}, "data.synthetic_per_class", "[5, 1000000]"),
        ({"data": {"synthetic_size": 10**5}}, "data.synthetic_size", "[32, 4096]"),
        ({"data": {"max_pixels": 2**40}}, "data.max_pixels", "[64, 2147483647]"),
        ({"data": {"max_archive_gib": 10**6}}, "data.max_archive_gib", "[0.001, 10000]"),
        ({"data": {"max_file_mib": 0}}, "data.max_file_mib", "[1, 4096]"),
        ({"data": {"max_file_mib": 10**6}}, "data.max_file_mib", "[1, 4096]"),
        ({"lr": 5.0}, "lr", "(0, 1]"),
        ({"train": {"scene_weight": -0.1}}, "train.scene_weight", "[0, 10]"),
        ({"model": {"prior_correction": 1.5}}, "model.prior_correction", "[0, 1]"),
        ({"model": {"prior_correction": "vivid"}}, "model.prior_correction", "[0, 1]"),
    ],
)
def test_out_of_range_values_name_key_and_range(overrides, key, allowed):
    with pytest.raises(ParamError, match=rf"\b{key} must be .*in {re.escape(allowed)}"):
        params_from_dict(merge(repo_params_dict(), overrides))


def test_every_numeric_param_has_an_upper_bound():
    """A huge value (a typo like 1e7) in any numeric key fails at load; none slips through."""
    raw = repo_params_dict()
    for section, values in raw.items():
        for name, value in (values.items() if isinstance(values, dict) else [(None, values)]):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            key = f"{section}.{name}" if name else section
            huge = merge(raw, {section: {name: 10**12}} if name else {section: 10**12})
            with pytest.raises(ParamError, match=rf"\b{re.escape(key)}\b"):
                params_from_dict(huge)


@pytest.mark.parametrize("key", ["raw", "resized", "shards", "model", "run_info", "eval_metrics", "samples"])
@pytest.mark.parametrize("value", ["/", ".", "", "/tmp/raw", "../elsewhere/raw", "data/../../raw", "~/raw"])
def test_stage_paths_must_stay_inside_the_repository(key, value):
    with pytest.raises(ParamError, match=rf"\bpaths\.{key}\b"):
        params_from_dict(merge(repo_params_dict(), {"paths": {key: value}}))


@pytest.mark.parametrize("value", ["/", str(Path.home()), str(REPO), str(REPO.parent), "..", ".", "~"])
def test_checkpoints_may_not_be_a_folder_train_would_wipe(value):
    with pytest.raises(ParamError, match=r"\bpaths\.checkpoints\b"):
        params_from_dict(merge(repo_params_dict(), {"paths": {"checkpoints": value}}))


def test_checkpoints_may_be_absolute_shared_storage(tmp_path):
    params = params_from_dict(merge(repo_params_dict(), {"paths": {"checkpoints": str(tmp_path / "ckpt")}}))
    assert params.paths.checkpoints == str(tmp_path / "ckpt")


def test_unknown_and_missing_keys_are_errors():
    with pytest.raises(ParamError, match=r"unknown key train\.epoch\b"):
        params_from_dict(merge(repo_params_dict(), {"train": {"epoch": 3}}))
    raw = repo_params_dict()
    del raw["model"]["width"]
    with pytest.raises(ParamError, match=r"missing key model\.width"):
        params_from_dict(raw)
    with pytest.raises(ParamError, match=r"unknown key colour"):
        params_from_dict(merge(repo_params_dict(), {"colour": 1}))


def test_one_seed_for_the_data_and_one_for_training():
    """`seed` was split: the data stages read data.seed, training train.seed (so `dvc exp run
    -S train.seed=1` re-runs only train and evaluate). The old key is an error, not ignored."""
    params = params_from_dict(merge(repo_params_dict(), {"data": {"seed": 1}, "train": {"seed": 2}}))
    assert (params.data.seed, params.train.seed) == (1, 2)
    with pytest.raises(ParamError, match=r"unknown key seed\b"):
        params_from_dict(merge(repo_params_dict(), {"seed": 42}))


def test_lr_written_by_dvc_as_string_is_a_float():
    # PyYAML reads `lr: 1e-4` (no dot) as a string; `dvc exp run -S lr=1e-4` writes just that.
    params = params_from_dict(merge(repo_params_dict(), {"lr": "1e-4"}))
    assert params.lr == pytest.approx(1e-4)
    with pytest.raises(ParamError, match=r"\blr\b"):
        params_from_dict(merge(repo_params_dict(), {"lr": "fast"}))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("lr: [1,\n")
    with pytest.raises(ParamError, match="not valid YAML at line 2, column 1: expected the node content") as err:
        load_params(tmp_path / "params.yaml")
    assert "\n" not in str(err.value)
    (tmp_path / "params.yaml").write_text("train:\n  batch_size: 16\n  epochs: 2\n  batch_size: 8\n")
    with pytest.raises(ParamError, match="not valid YAML at line 4, column 3: duplicate key 'batch_size'"):
        load_params(tmp_path / "params.yaml")  # as DVC refuses it, not the last one kept silently


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (0.2, 0.2), ("0.2", 0.2)])
def test_prior_correction_is_a_strength_or_auto(value, expected):
    params = params_from_dict(merge(repo_params_dict(), {"model": {"prior_correction": value}}))
    assert params.model.prior_correction == expected
